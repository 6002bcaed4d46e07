#ifndef MODELPULSE_COMMON_COMMON_H_
#define MODELPULSE_COMMON_COMMON_H_

// The shared vocabulary of every module. Light headers only: std and tl::expected.
#include "common/clock.h"
#include "common/duration.h"
#include "common/labels.h"
#include "common/probe.h"
#include "common/result.h"
#include "common/secret.h"

#endif  // MODELPULSE_COMMON_COMMON_H_
