// The `check` command: validate a policy file and summarise what it says.
//
// Used by the command-line front end (cli.md) so that a policy editor can test
// a file before any settlement reads it. Writes only to the streams given.
#ifndef CARECARD_RULES_CHECK_REPORT_H_
#define CARECARD_RULES_CHECK_REPORT_H_

#include <ostream>
#include <string>

#include "engine/policy.h"
#include "rules/messages.h"

namespace carecard {

// Loads `path`. When it is valid, writes "ok" and then one line per version in
// order of `from` to `out`, for example
//   2022.1  2022-03..  qingdao-rural-care-card  type 1 第一类: deposit >= 100.00, subsidy 50.00; type 2 ...
// ("from..to", empty after ".." while still in force), and returns 0.
// Otherwise writes every error, one per line as "file:line:col: message", to
// `err` and returns 2. Messages are in `language`; "ok" is the same in both so
// that scripts can test for it.
int RunCheckCommand(const std::string& path, Language language, std::ostream& out, std::ostream& err);

// One summary line (without the newline) for `version` of `policy`.
std::string DescribeVersion(const Policy& policy, const PolicyVersion& version, Language language);

}  // namespace carecard

#endif  // CARECARD_RULES_CHECK_REPORT_H_
