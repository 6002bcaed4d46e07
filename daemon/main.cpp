#include <curl/curl.h>
#include <malloc.h>

#include <cstdio>
#include <exception>

#include "daemon/cli.h"

int main(int argc, char** argv) {
  // A scrape allocates a few large buffers (the /metrics text, httplib's copy of it) and frees
  // them. glibc raises its mmap threshold to the size of each freed mmapped block, so from the
  // second scrape on those buffers came from the heap arenas and stayed resident (bench/README.md:
  // +9 MB RSS after five scrapes of 100 targets). A fixed threshold keeps them mmapped.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // libcurl's global init is not thread-safe: once, here, before any thread starts.
  curl_global_init(CURL_GLOBAL_ALL);
  int code = 1;
  try {
    code = modelpulse::daemon::RunCli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "modelpulse: fatal: %s\n", e.what());
  }
  curl_global_cleanup();
  return code;
}
