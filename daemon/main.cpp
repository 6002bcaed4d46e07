#include <curl/curl.h>

#include <cstdio>
#include <exception>

#include "daemon/cli.h"

int main(int argc, char** argv) {
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
