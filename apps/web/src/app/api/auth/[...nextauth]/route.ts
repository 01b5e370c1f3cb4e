import { NextRequest } from "next/server";
import { handlers } from "@/auth";
import { cappedBody } from "@/server/request-body";

export const dynamic = "force-dynamic";
export const { GET } = handlers;
// Sign-in forms are small: the body is read under the size cap before next-auth parses it (as a
// NextRequest again: next-auth reads nextUrl when AUTH_URL is set).
export const POST = cappedBody((req: Request) => handlers.POST(new NextRequest(req)));
