#include "rules/check_report.h"

#include "rules/policy_loader.h"

namespace carecard {

std::string DescribeVersion(const Policy& policy, const PolicyVersion& version, Language language) {
  std::string line = version.version + "  " + version.from.ToString() + ".." +
                     (version.to ? version.to->ToString() : std::string()) + "  " + policy.policy_id;
  const char* separator = "  ";
  for (const CardTypeRule& card_type : version.card_types) {
    line += separator;
    separator = "; ";
    line += Format(MessageId::kCheckCardType, language,
                   {std::to_string(card_type.type), card_type.name.empty() ? std::string() : " " + card_type.name,
                    card_type.min_monthly_deposit.ToString(), card_type.monthly_subsidy.ToString()});
  }
  return line;
}

int RunCheckCommand(const std::string& path, Language language, std::ostream& out, std::ostream& err) {
  const PolicyLoadResult result = LoadPolicyFromFile(path, language);
  if (!result.ok) {
    for (const RuleError& error : result.errors) err << error.ToString() << '\n';
    return 2;
  }
  out << "ok\n";
  for (const PolicyVersion& version : result.policy.versions) {
    out << DescribeVersion(result.policy, version, language) << '\n';
  }
  return 0;
}

}  // namespace carecard
