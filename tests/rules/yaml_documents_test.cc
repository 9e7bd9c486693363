#include "rules/yaml_documents.h"

#include <gtest/gtest.h>

#include "rules/policy_loader.h"

namespace carecard {
namespace {

// Regression (fuzz/policy_loader_fuzz.cc): yaml-cpp 0.7's LoadAll never
// returned on these and ate all memory; each must now be a syntax error at line
// 1 or 2.
TEST(yaml_documents, a_document_starting_with_a_stray_comma_is_a_syntax_error_not_an_endless_loop) {
  for (const char* text : {",", "&jv,rsion", "&a ,", "---\n,"}) {
    EXPECT_THROW(LoadFirstYamlDocument(text), YAML::Exception) << text;
    const PolicyLoadResult result = LoadPolicyFromText(text, "rules.yaml");
    ASSERT_FALSE(result.ok) << text;
    ASSERT_EQ(result.errors.size(), 1u) << text;
    EXPECT_EQ(result.errors[0].file, "rules.yaml");
    EXPECT_GE(result.errors[0].line, 1) << text;
    EXPECT_NE(result.errors[0].message.find("','"), std::string::npos) << result.errors[0].message;
  }
}

TEST(yaml_documents, a_stray_comma_starting_a_later_document_is_a_syntax_error_at_its_line) {
  EXPECT_THROW(LoadFirstYamlDocument("a: 1\n---\n,\n"), YAML::Exception);
  const PolicyLoadResult result = LoadPolicyFromText("schema: subsidy-rules/1\n---\n,\n", "rules.yaml");
  ASSERT_FALSE(result.ok);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].line, 3);
  EXPECT_EQ(result.errors[0].column, 1);
}

TEST(yaml_documents, one_document_has_no_second_and_an_empty_text_has_a_null_first) {
  EXPECT_FALSE(LoadFirstYamlDocument("a: [1, 2]\n").second.has_value());
  EXPECT_TRUE(LoadFirstYamlDocument("").first.IsNull());
  EXPECT_TRUE(LoadFirstYamlDocument("# only a comment\n").first.IsNull());
}

TEST(yaml_documents, a_second_document_is_found_where_its_first_node_is) {
  const YamlDocuments documents = LoadFirstYamlDocument("a: 1\n---\nb: 2\n");
  ASSERT_TRUE(documents.second.has_value());
  EXPECT_EQ(documents.second->line, 2);
  EXPECT_EQ(documents.second->column, 0);
}

}  // namespace
}  // namespace carecard
