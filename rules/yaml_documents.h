// Reading the first YAML document of a rules file without yaml-cpp 0.7's endless loop.
//
// YAML::LoadAll of yaml-cpp 0.7.0 (Debian 12) never returns, adding a null
// document per turn until memory runs out, when a document begins with a stray
// ',' (",", "&a ,", "a: 1\n---\n,"): yaml-cpp issue #1040, fixed upstream after
// 0.8.0 by pull request #1319. Found by fuzz/policy_loader_fuzz.cc. Rules files
// hold one document, so this reads the first and looks at most two documents
// further (is there a second; is the parser still making progress).
#ifndef CARECARD_RULES_YAML_DOCUMENTS_H_
#define CARECARD_RULES_YAML_DOCUMENTS_H_

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string_view>

namespace carecard {

struct YamlDocuments {
  YAML::Node first;                  // the first document; a null node when there is none
  std::optional<YAML::Mark> second;  // where a second document starts, when there is one
};

// Parses the first document of `text` and finds where a second one starts,
// reading no further. Throws YAML::Exception on a syntax error, as LoadAll
// does, a document that starts with a stray ',' included.
YamlDocuments LoadFirstYamlDocument(std::string_view text);

}  // namespace carecard

#endif  // CARECARD_RULES_YAML_DOCUMENTS_H_
