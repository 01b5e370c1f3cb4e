import type { Metadata } from "next";
import { Card, PageHeader } from "@/components/ui/card";
import { CreateDeviceForm } from "@/components/devices/create-device-form";
import { DeviceList } from "@/components/devices/device-list";
import { NbdCa } from "@/components/devices/nbd-ca";

export const metadata: Metadata = { title: "Devices" };

export default function DevicesPage() {
  return (
    <>
      <PageHeader
        title="Devices"
        description="A credential per machine that attaches your volumes over NBD with TLS, from anywhere. Revoke one and it is refused at once."
      />
      <div className="space-y-6">
        <Card id="new-device" title="New device">
          <CreateDeviceForm />
        </Card>
        <Card id="devices" title="Your devices">
          <DeviceList />
        </Card>
        <Card id="nbd-ca" title="Certificate authority" description="Signs the gateway's certificate and every device certificate of this deployment.">
          <NbdCa />
        </Card>
      </div>
    </>
  );
}
