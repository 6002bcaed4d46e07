#ifndef MODELPULSE_COMMON_LABELS_H_
#define MODELPULSE_COMMON_LABELS_H_

#include <map>
#include <string>

namespace modelpulse {

// A Prometheus label set. Ordered by name so that equal sets compare and serialise equally.
using Labels = std::map<std::string, std::string>;

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_LABELS_H_
