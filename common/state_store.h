#ifndef MODELPULSE_COMMON_STATE_STORE_H_
#define MODELPULSE_COMMON_STATE_STORE_H_

// Small documents that must survive a restart, such as alert states. storage::Store keeps them;
// rules/ persists its alert states through this interface without including storage/.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace modelpulse {

// Values are replaced whole per (space, key) and written synchronously: when PutState returns,
// the value is committed. kInternal/kIo on a database error.
class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual Status PutState(std::string_view space, std::string_view key, std::string_view value) = 0;
  virtual Status DeleteState(std::string_view space, std::string_view key) = 0;
  // Every (key, value) of one namespace, ordered by key.
  virtual Result<std::vector<std::pair<std::string, std::string>>> GetStates(
      std::string_view space) const = 0;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_STATE_STORE_H_
