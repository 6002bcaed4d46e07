#include "simulator/internal/connection.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

namespace modelpulse::simulator {
namespace {

int PortOf(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  }
  return -1;
}

std::string HostOf(const sockaddr_storage& addr) {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(addr).sin_addr, buffer,
              sizeof(buffer));
  } else if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr, buffer,
              sizeof(buffer));
  }
  return buffer;
}

}  // namespace

PeerWatch::PeerWatch(int local_port, std::string remote_addr, int remote_port)
    : local_port_(local_port), remote_addr_(std::move(remote_addr)), remote_port_(remote_port) {}

bool PeerWatch::Closed() {
  if (!searched_) {
    searched_ = true;
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr)
      return false;
    while (const dirent* entry = readdir(dir)) {
      char* end = nullptr;
      const long fd = std::strtol(entry->d_name, &end, 10);
      if (end == entry->d_name || *end != '\0')
        continue;
      const int candidate = static_cast<int>(fd);
      struct stat info {};
      if (fstat(candidate, &info) != 0 || !S_ISSOCK(info.st_mode))
        continue;
      sockaddr_storage local{};
      sockaddr_storage peer{};
      socklen_t local_len = sizeof(local);
      socklen_t peer_len = sizeof(peer);
      if (getsockname(candidate, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
          getpeername(candidate, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
        continue;
      }
      if (PortOf(local) == local_port_ && PortOf(peer) == remote_port_ &&
          HostOf(peer) == remote_addr_) {
        fd_ = candidate;
        break;
      }
    }
    closedir(dir);
  }
  if (fd_ < 0)
    return false;
  char byte = 0;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0)
    return true;
  if (n < 0)
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  return false;
}

}  // namespace modelpulse::simulator
