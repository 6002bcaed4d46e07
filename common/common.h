#ifndef MODELPULSE_COMMON_COMMON_H_
#define MODELPULSE_COMMON_COMMON_H_

// The shared vocabulary of every module. Light headers only: std and tl::expected.
// common/environment.h (environment variables, files, globs) and common/yaml_reader.h (YAML with
// positioned diagnostics) are common's other public headers, included only where needed: the
// latter pulls in yaml-cpp, which stays out of widely included headers.
#include "common/clock.h"
#include "common/duration.h"
#include "common/labels.h"
#include "common/probe.h"
#include "common/result.h"
#include "common/secret.h"

#endif  // MODELPULSE_COMMON_COMMON_H_
