// The dist room's exception type and its one-line, rank-prefixed error report.
// Library code throws DistError; the CLI prints it once with report_error and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace lmt::dist {

struct RankEnv;

// Thrown by everything in lmt::dist; the message names the rank, tensor, flag or variable.
class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Prints "lmt: rank R: what" to stderr, once per process (later calls are ignored), so that
// an error that travels through several layers is not reported twice.
void report_error(const RankEnv& env, const std::string& what);

}  // namespace lmt::dist
