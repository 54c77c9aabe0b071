#include "transport/access_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace plantd::transport {
namespace {

std::shared_ptr<const AccessPolicy> MustParse(const std::string& text) {
  auto parsed = AccessPolicy::Parse(text, "acl.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  return parsed.ok() ? parsed.value() : nullptr;
}

std::string ParseError(const std::string& text) {
  auto parsed = AccessPolicy::Parse(text, "acl.yaml");
  EXPECT_FALSE(parsed.ok()) << "accepted:\n" << text;
  return parsed.ok() ? std::string() : parsed.status().message();
}

TEST(AccessPolicy, GrantsAreByExactNameOrPrefixAndEverythingElseIsDenied) {
  auto policy = MustParse(R"(rules:
  - peers: [alice]
    call: [org.plantd.Valve, "plant.*"]
    serve: ["driver.*"]
)");
  ASSERT_TRUE(policy);
  EXPECT_TRUE(policy->MayCall("alice", "org.plantd.Valve"));
  EXPECT_FALSE(policy->MayCall("alice", "org.plantd.Valve2")) << "no * means the exact name";
  EXPECT_TRUE(policy->MayCall("alice", "plant.pump"));
  EXPECT_TRUE(policy->MayCall("alice", "plant."));
  EXPECT_FALSE(policy->MayCall("alice", "plant")) << "the prefix includes the dot";
  EXPECT_FALSE(policy->MayCall("alice", "mmi.service")) << "default deny";
  EXPECT_TRUE(policy->MayServe("alice", "driver.1"));
  EXPECT_FALSE(policy->MayServe("alice", "plant.pump")) << "call does not grant serve";
  EXPECT_FALSE(policy->MayCall("bob", "plant.pump")) << "a peer no rule names may do nothing";
  EXPECT_FALSE(policy->MayCall("", "plant.pump")) << "no key, no grants";
  EXPECT_EQ(policy->rule_count(), 1u);
}

TEST(AccessPolicy, GroupsAndAnyoneAddUp) {
  auto policy = MustParse(R"(groups:
  operators: [alice, bob]
rules:
  - peers: ["@operators"]
    call: ["plant.*"]
  - peers: ["*"]
    call: [mmi.service]
  - peers: [bob]
    call: [org.plantd.Admin]
)");
  ASSERT_TRUE(policy);
  EXPECT_TRUE(policy->MayCall("alice", "plant.x"));
  EXPECT_TRUE(policy->MayCall("alice", "mmi.service")) << "what * has, everyone has";
  EXPECT_FALSE(policy->MayCall("alice", "org.plantd.Admin"));
  EXPECT_TRUE(policy->MayCall("bob", "org.plantd.Admin"));
  EXPECT_TRUE(policy->MayCall("bob", "plant.x"));
  EXPECT_TRUE(policy->MayCall("carol", "mmi.service")) << "any key gets the * grants";
  EXPECT_FALSE(policy->MayCall("carol", "plant.x"));
  EXPECT_FALSE(policy->MayCall("", "mmi.service")) << "* is any key, not no key";
  EXPECT_EQ(policy->named_peers(), (std::vector<std::string>{"alice", "bob"}));
}

TEST(AccessPolicy, BusTopicsArePrefixesPerBus) {
  auto policy = MustParse(R"(rules:
  - peers: [sensor]
    publish: {telemetry: ["plant.line1."], "*": ["heartbeat"]}
  - peers: [ui]
    subscribe: {telemetry: [""]}
)");
  ASSERT_TRUE(policy);
  EXPECT_TRUE(policy->MayPublish("sensor", "telemetry", "plant.line1.temp"));
  EXPECT_FALSE(policy->MayPublish("sensor", "telemetry", "plant.line2.temp"));
  EXPECT_FALSE(policy->MayPublish("sensor", "events", "plant.line1.temp")) << "per bus";
  EXPECT_TRUE(policy->MayPublish("sensor", "events", "heartbeat.7")) << "* is every bus";
  EXPECT_FALSE(policy->MaySubscribe("sensor", "telemetry", "plant."));
  EXPECT_TRUE(policy->MaySubscribe("ui", "telemetry", "")) << "\"\" grants everything";
  EXPECT_TRUE(policy->MaySubscribe("ui", "telemetry", "plant."));
  EXPECT_FALSE(policy->MaySubscribe("ui", "events", "plant."));
  EXPECT_FALSE(policy->MayPublish("ui", "telemetry", "x"));
}

// Peers of a security.null_endpoints endpoint are named kAnonymousPeer and
// have no key: "*" ("any key") does not reach them; a rule must name them.
TEST(AccessPolicy, AnyoneMeansAnyKeyNotAnonymousPeers) {
  auto policy = MustParse(R"(rules:
  - peers: ["*"]
    call: ["mmi.*"]
  - peers: [anonymous]
    call: [plant.valve]
)");
  ASSERT_TRUE(policy);
  EXPECT_TRUE(policy->MayCall("alice", "mmi.service"));
  EXPECT_FALSE(policy->MayCall(kAnonymousPeer, "mmi.service"));
  EXPECT_TRUE(policy->MayCall(kAnonymousPeer, "plant.valve"));
  EXPECT_FALSE(policy->MayCall("alice", "plant.valve"));
  auto none = MustParse("rules:\n  - peers: [\"*\"]\n    call: [\"*\"]\n");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->MayCall(kAnonymousPeer, "plant.valve"))
      << "no rule names anonymous: it may do nothing";
}

TEST(AccessPolicy, AnEmptyRuleListDeniesAll) {
  auto policy = MustParse("rules: []\n");
  ASSERT_TRUE(policy);
  EXPECT_FALSE(policy->MayCall("alice", "mmi.service"));
  EXPECT_EQ(policy->rule_count(), 0u);
}

TEST(AccessPolicy, MistakesAreRefusedWithTheLineAndWhatIsWrong) {
  EXPECT_EQ(ParseError("rules:\n  - peers: [a]\n    cal: [x]\n"),
            "acl.yaml:3: unknown rule field 'cal' (expected peers, call, serve, publish, "
            "subscribe)");
  EXPECT_EQ(ParseError("rules:\n  - call: [x]\n"),
            "acl.yaml:2: a rule needs `peers`: key names, @groups or \"*\"");
  EXPECT_EQ(ParseError("rules:\n  - peers: [\"@ops\"]\n    call: [x]\n"),
            "acl.yaml:2: no group 'ops'");
  EXPECT_EQ(ParseError("rules:\n  - peers: [a]\n    call: [\"a*b\"]\n"),
            "acl.yaml:3: call pattern 'a*b': a service name, or a prefix ending in a single *");
  EXPECT_EQ(ParseError("rules:\n  - peers: [a]\n    call: x\n"),
            "acl.yaml:3: call must be a list of strings");
  EXPECT_EQ(ParseError("rules:\n  - peers: [a]\n    publish: [x]\n"),
            "acl.yaml:3: publish must map bus names (or \"*\") to lists of topic prefixes");
  EXPECT_EQ(ParseError("group:\n  a: [b]\nrules: []\n"),
            "acl.yaml:1: unknown key 'group' (expected groups or rules)");
  EXPECT_EQ(ParseError("groups:\n  a: [\"@b\"]\nrules: []\n"),
            "acl.yaml:2: group member '@b': a key name (groups do not nest)");
  EXPECT_EQ(ParseError("groups: {}\n"),
            "acl.yaml: `rules` must be a list (an empty list denies all)");
  EXPECT_NE(ParseError("rules: [\n").find("acl.yaml:"), std::string::npos);
  EXPECT_EQ(ParseError("- just a list\n"), "acl.yaml: expected a map with `groups` and `rules`");
}

TEST(AccessPolicy, LoadNamesAMissingFile) {
  auto loaded = AccessPolicy::Load("/nonexistent/acl.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(), "/nonexistent/acl.yaml: cannot open the access rules");
}

}  // namespace
}  // namespace plantd::transport
