#include "rules/messages.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "rules/spelling.h"

namespace carecard {
namespace {

std::set<std::string> Placeholders(std::string_view text) {
  std::set<std::string> found;
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if (text[i] == '{' && text[i + 2] == '}') found.insert(std::string(text.substr(i, 3)));
  }
  return found;
}

TEST(messages, every_message_exists_in_english_and_chinese_with_the_same_arguments) {
  for (int i = 0; i < static_cast<int>(MessageId::kCount); ++i) {
    const auto id = static_cast<MessageId>(i);
    const std::string_view english = MessageTemplate(id, Language::kEnglish);
    const std::string_view chinese = MessageTemplate(id, Language::kChinese);
    EXPECT_FALSE(english.empty()) << "message " << i;
    EXPECT_FALSE(chinese.empty()) << "message " << i;
    EXPECT_EQ(Placeholders(english), Placeholders(chinese)) << "message " << i << ": " << english;
  }
}

TEST(messages, sentences_are_translated_not_copied) {
  // Every message with words in it differs between the languages.
  for (int i = 0; i < static_cast<int>(MessageId::kCount); ++i) {
    const auto id = static_cast<MessageId>(i);
    if (id == MessageId::kKindText) continue;  // only a quoted value: the same in both
    EXPECT_NE(MessageTemplate(id, Language::kEnglish), MessageTemplate(id, Language::kChinese)) << "message " << i;
  }
}

TEST(messages, format_substitutes_arguments_by_number) {
  EXPECT_EQ(Format(MessageId::kUnknownKey, Language::kEnglish, {"x", "card type 1", ""}),
            "unknown key 'x' in card type 1");
  EXPECT_EQ(Format(MessageId::kPlaceExclusion, Language::kChinese, {"2", "2022.1"}), "版本 '2022.1' 的第 2 条排除规则");
}

TEST(spelling, code_points_not_bytes) {
  EXPECT_EQ(CountCodePoints("abc"), 3u);
  EXPECT_EQ(CountCodePoints("第一类"), 3u);
  EXPECT_EQ(CodePointAt("a≥b", 1), "≥");
}

TEST(spelling, nearest_name_allows_small_slips_only) {
  const std::string_view names[] = {"assessment", "age", "has_assessment", "min_monthly_deposit"};
  EXPECT_EQ(NearestName("assesment", names), "assessment");
  EXPECT_EQ(NearestName("aeg", names), "age");  // a transposition is one edit
  EXPECT_EQ(NearestName("min_montly_deposit", names), "min_monthly_deposit");
  EXPECT_FALSE(NearestName("income", names));
  EXPECT_FALSE(NearestName("x", names));
  EXPECT_FALSE(NearestName(std::string(kMaxSuggestedNameBytes + 1, 'a'), names));
}

TEST(spelling, edit_distance_counts_insertions_deletions_substitutions_and_swaps) {
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("ab", "ba"), 1u);
  EXPECT_EQ(EditDistance("same", "same"), 0u);
}

}  // namespace
}  // namespace carecard
