/*
 * nbd-load: a read load generator on libnbd, for the bench's TLS section.
 *
 * fio's nbd engine cannot connect with TLS-PSK: libnbd reads ?tls-psk-file= only for callers that
 * call nbd_set_uri_allow_local_file(), and fio does not. This driver does, so the same client runs
 * against every server, plain and TLS alike.
 *
 *   nbd-load URI randread|read BLOCK_SIZE IODEPTH RAMP_SECONDS RUN_SECONDS REGION_BYTES
 *
 * Prints one JSON line: {"ops":N,"bytes":N,"seconds":S,"meanLatencyUs":L}, counting only what
 * completed after the ramp.
 */
#include <inttypes.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
  char *buf;
  double issued;
  bool done;
  int error;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Completion runs under the handle's lock: it only marks the slot, the main loop reissues it. */
static int completed(void *user_data, int *error) {
  struct slot *slot = user_data;
  slot->done = true;
  slot->error = *error;
  return 1; /* retire the command */
}

/* Seeded xorshift: every server is asked for the same offsets in the same order. */
static uint64_t rng_state = 42;
static uint64_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void die(const char *what) {
  fprintf(stderr, "nbd-load: %s: %s\n", what, nbd_get_error());
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: nbd-load URI randread|read BLOCK_SIZE IODEPTH RAMP_SECONDS RUN_SECONDS REGION_BYTES\n");
    return 2;
  }
  const char *uri = argv[1];
  bool random = strcmp(argv[2], "randread") == 0;
  uint64_t block = strtoull(argv[3], NULL, 10);
  int depth = atoi(argv[4]);
  double ramp = atof(argv[5]), run = atof(argv[6]);
  uint64_t region = strtoull(argv[7], NULL, 10);
  if (block == 0 || depth < 1 || run <= 0) {
    fprintf(stderr, "nbd-load: bad arguments\n");
    return 2;
  }

  struct nbd_handle *nbd = nbd_create();
  if (nbd == NULL) die("nbd_create");
  nbd_set_uri_allow_local_file(nbd, true);
  if (nbd_connect_uri(nbd, uri) == -1) die(uri);
  int64_t size = nbd_get_size(nbd);
  if (size == -1) die("nbd_get_size");
  if ((uint64_t)size < region) region = size;
  uint64_t blocks = region / block;
  if (blocks == 0) {
    fprintf(stderr, "nbd-load: the export is smaller than one block\n");
    return 1;
  }

  struct slot *slots = calloc(depth, sizeof *slots);
  for (int i = 0; i < depth; i++) {
    slots[i].buf = malloc(block);
    if (slots[i].buf == NULL) die("malloc");
  }
  uint64_t sequential = 0;
  double start = now(), measure_from = start + ramp, stop = measure_from + run;
  uint64_t ops = 0, bytes = 0;
  double latency_sum = 0;
  int in_flight = 0;
  bool stopping = false;

  for (int i = 0; i < depth; i++) slots[i].done = true; /* every slot starts free */
  for (;;) {
    double t = now();
    if (t >= stop) stopping = true;
    for (int i = 0; i < depth; i++) {
      struct slot *slot = &slots[i];
      if (!slot->done) continue;
      if (slot->issued > 0) {
        /* A finished command: count it, then free the slot. */
        if (slot->error != 0) {
          fprintf(stderr, "nbd-load: read failed: %s\n", strerror(slot->error));
          return 1;
        }
        if (slot->issued >= measure_from && t <= stop) {
          ops++;
          bytes += block;
          latency_sum += t - slot->issued;
        }
        slot->issued = 0;
        in_flight--;
      }
      if (stopping) continue;
      uint64_t index = random ? next_random() % blocks : sequential++ % blocks;
      slot->done = false;
      slot->issued = t;
      nbd_completion_callback callback = {.callback = completed, .user_data = slot};
      if (nbd_aio_pread(nbd, slot->buf, block, index * block, callback, 0) == -1) die("nbd_aio_pread");
      in_flight++;
    }
    if (stopping && in_flight == 0) break;
    if (nbd_poll(nbd, -1) == -1) die("nbd_poll");
  }
  nbd_shutdown(nbd, 0);
  nbd_close(nbd);
  printf("{\"ops\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"meanLatencyUs\":%.1f}\n", ops, bytes, run,
         ops ? latency_sum / ops * 1e6 : 0.0);
  return 0;
}
