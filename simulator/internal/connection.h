#ifndef MODELPULSE_SIMULATOR_INTERNAL_CONNECTION_H_
#define MODELPULSE_SIMULATOR_INTERNAL_CONNECTION_H_

// Tells a hanging request whether its client has gone. cpp-httplib 0.11 gives a handler no
// access to its socket, so the socket is found once by its address pair among the process's
// descriptors, then peeked at without reading. Linux only. Used only from the worker thread that
// owns the connection, which keeps the descriptor open for as long as the watch lives.

#include <string>

namespace modelpulse::simulator {

class PeerWatch {
 public:
  PeerWatch(int local_port, std::string remote_addr, int remote_port);

  // True once the client has closed or reset the connection. False when unknown.
  bool Closed();

 private:
  int local_port_;
  std::string remote_addr_;
  int remote_port_;
  int fd_ = -1;
  bool searched_ = false;
};

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_CONNECTION_H_
