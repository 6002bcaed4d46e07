#ifndef MODELPULSE_DAEMON_CLI_H_
#define MODELPULSE_DAEMON_CLI_H_

namespace modelpulse::daemon {

// The whole command line of the `modelpulse` binary; returns the process exit code.
int RunCli(int argc, char** argv);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_CLI_H_
