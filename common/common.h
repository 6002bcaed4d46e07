#ifndef MODELPULSE_COMMON_COMMON_H_
#define MODELPULSE_COMMON_COMMON_H_

// The shared vocabulary of every module (DESIGN.md §2); depends on no module of ours. Light
// headers only: std and tl::expected.
//
// Where things live:
//   result.h         Result<T>/Status/Error, the one error model across module APIs
//   clock.h          wall and monotonic time, real (SystemClock) and simulated (ManualClock)
//   duration.h       Prometheus durations ("5m", "1h30m")
//   labels.h         a label set
//   probe.h          the probe record (ProbeResult) and its outcome classes (DESIGN.md §3)
//   probe_series.h   the ONE table of probe series: name, help, resource, stored field id and
//                    how each is taken from a probe; /metrics, rollups and rules all read it
//   sample_source.h  the series model rules evaluate over (SampleSource, matchers, range
//                    aggregates), staleness, and the shared arithmetic (quantile, Kahan sum)
//   state_store.h    small documents that survive a restart (alert states)
//   secret.h         a credential that cannot be printed by accident
//   environment.h    environment variables, files and credentials, injectable for tests
//   yaml_reader.h    YAML with diagnostics at file:line:column, key checks and "did you mean"
// environment.h and yaml_reader.h are not included here: the latter pulls in yaml-cpp, which
// stays out of widely included headers.
#include "common/clock.h"
#include "common/duration.h"
#include "common/labels.h"
#include "common/probe.h"
#include "common/result.h"
#include "common/secret.h"

#endif  // MODELPULSE_COMMON_COMMON_H_
