#include "engine/policy.h"

#include <algorithm>
#include <array>

namespace carecard {
namespace {
constexpr std::array<std::string_view, kPersonFlagCount> kFlagNames = {
    "left_behind", "living_alone", "empty_nest", "dibao", "tekun", "disabled", "special_family"};
}  // namespace

std::string_view PersonFlagName(int index) { return kFlagNames.at(static_cast<size_t>(index)); }

std::optional<PersonFlag> PersonFlagFromName(std::string_view name) {
  for (int i = 0; i < kPersonFlagCount; ++i) {
    if (kFlagNames[static_cast<size_t>(i)] == name) return static_cast<PersonFlag>(1u << i);
  }
  return std::nullopt;
}

std::string_view ProgramName(Program p) { return p == Program::kHomeBed ? "home_bed" : "gov_home_service"; }

std::optional<Program> ProgramFromName(std::string_view name) {
  if (name == "home_bed") return Program::kHomeBed;
  if (name == "gov_home_service") return Program::kGovHomeService;
  return std::nullopt;
}

std::string_view ChoiceName(EnrollmentChoice c) {
  switch (c) {
    case EnrollmentChoice::kCardSubsidy: return "card_subsidy";
    case EnrollmentChoice::kHomeBedDiscount: return "home_bed_discount";
    default: return "";
  }
}

std::optional<EnrollmentChoice> ChoiceFromName(std::string_view name) {
  if (name.empty()) return EnrollmentChoice::kNone;
  if (name == "card_subsidy") return EnrollmentChoice::kCardSubsidy;
  if (name == "home_bed_discount") return EnrollmentChoice::kHomeBedDiscount;
  return std::nullopt;
}

bool ExclusionRule::AppliesTo(int card_type) const {
  return card_types.empty() || std::find(card_types.begin(), card_types.end(), card_type) != card_types.end();
}

const CardTypeRule* PolicyVersion::FindCardType(int type) const {
  for (const auto& ct : card_types) {
    if (ct.type == type) return &ct;
  }
  return nullptr;
}

const PolicyVersion* Policy::VersionFor(YearMonth month) const {
  for (const auto& v : versions) {
    if (v.InForce(month)) return &v;
  }
  return nullptr;
}

}  // namespace carecard
