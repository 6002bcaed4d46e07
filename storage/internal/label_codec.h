#ifndef MODELPULSE_STORAGE_INTERNAL_LABEL_CODEC_H_
#define MODELPULSE_STORAGE_INTERNAL_LABEL_CODEC_H_

// Private to storage/: the canonical text form of a label set as stored in SQLite.

#include <string>
#include <string_view>

#include "common/common.h"

namespace modelpulse::storage {

// "k1=v1,k2=v2" in name order, with '\', '=' and ',' escaped by a backslash and NUL written as
// "\0", so any byte string round-trips and equal sets encode to equal text (usable as a key).
std::string EncodeLabels(const Labels& labels);

// The inverse of EncodeLabels. Fails with kParse on text EncodeLabels cannot produce (a stray
// '=', a dangling or unknown escape, a pair without '=', a repeated name).
Result<Labels> DecodeLabels(std::string_view text);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_LABEL_CODEC_H_
