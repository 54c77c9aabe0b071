#include "transport/access_policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <utility>

namespace plantd::transport {
namespace {

// An ACL file is a few kilobytes; anything far larger is a mistake.
constexpr size_t kMaxPolicyBytes = size_t{4} << 20;
constexpr std::string_view kAnyone = "*";

std::string Where(const std::string& source, const YAML::Node& node) {
  return source + ":" + std::to_string(node.Mark().line + 1) + ": ";
}

// "name" matches only itself; "prefix*" every name that starts with prefix
// ("*" alone: everything).
bool MatchesPattern(std::string_view pattern, std::string_view name) {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return name.substr(0, pattern.size()) == pattern;
  }
  return pattern == name;
}

bool AnyPatternMatches(const std::vector<std::string>& patterns, std::string_view name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return MatchesPattern(p, name); });
}

bool AnyPrefixOf(const std::vector<std::string>& prefixes, std::string_view topic) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return topic.substr(0, p.size()) == p; });
}

bool TopicAllowed(const StringMap<std::vector<std::string>>& by_bus, std::string_view bus,
                  std::string_view topic) {
  if (auto it = by_bus.find(bus); it != by_bus.end() && AnyPrefixOf(it->second, topic)) {
    return true;
  }
  auto any = by_bus.find(kAnyone);
  return any != by_bus.end() && AnyPrefixOf(any->second, topic);
}

void Append(std::vector<std::string>* to, const std::vector<std::string>& from) {
  to->insert(to->end(), from.begin(), from.end());
}

void Merge(AccessPolicy::Grants* into, const AccessPolicy::Grants& from) {
  Append(&into->call, from.call);
  Append(&into->serve, from.serve);
  for (const auto& [bus, prefixes] : from.publish) Append(&into->publish[bus], prefixes);
  for (const auto& [bus, prefixes] : from.subscribe) Append(&into->subscribe[bus], prefixes);
}

Status ReadStrings(const YAML::Node& node, const std::string& source, const char* what,
                   std::vector<std::string>* out) {
  if (!node.IsSequence()) {
    return Status::InvalidArgument(Where(source, node) + what + " must be a list of strings");
  }
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) {
      return Status::InvalidArgument(Where(source, item) + what + " must be a list of strings");
    }
    out->push_back(item.Scalar());
  }
  return Status::Ok();
}

// A service pattern: a name, or a prefix followed by one "*" at the end.
Status CheckServicePattern(const YAML::Node& node, const std::string& source, const char* what,
                           const std::string& pattern) {
  const size_t star = pattern.find('*');
  if (pattern.empty() || (star != std::string::npos && star + 1 != pattern.size())) {
    return Status::InvalidArgument(Where(source, node) + what + " pattern '" + pattern +
                                   "': a service name, or a prefix ending in a single *");
  }
  return Status::Ok();
}

Status ReadTopics(const YAML::Node& node, const std::string& source, const char* what,
                  StringMap<std::vector<std::string>>* out) {
  if (!node.IsMap()) {
    return Status::InvalidArgument(Where(source, node) + what +
                                   " must map bus names (or \"*\") to lists of topic prefixes");
  }
  for (const auto& item : node) {
    const std::string bus = item.first.Scalar();
    if (bus.empty()) return Status::InvalidArgument(Where(source, item.first) + "empty bus name");
    std::vector<std::string> prefixes;
    Status s = ReadStrings(item.second, source, what, &prefixes);
    if (!s.ok()) return s;
    Append(&(*out)[bus], prefixes);
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const AccessPolicy>> AccessPolicy::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(path + ": cannot open the access rules");
  std::string text;
  text.resize(kMaxPolicyBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return Status::InvalidArgument(path + ": cannot read the access rules");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPolicyBytes) {
    return Status::InvalidArgument(path + ": larger than 4 MiB; not an access rules file");
  }
  return Parse(text, path);
}

Result<std::shared_ptr<const AccessPolicy>> AccessPolicy::Parse(std::string_view text,
                                                                const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) {
    return Status::InvalidArgument(source + ": expected a map with `groups` and `rules`");
  }
  auto policy = std::make_shared<AccessPolicy>();
  std::set<std::string> named;

  StringMap<std::vector<std::string>> groups;
  for (const auto& item : root) {
    const std::string key = item.first.Scalar();
    if (key != "groups" && key != "rules") {
      return Status::InvalidArgument(Where(source, item.first) + "unknown key '" + key +
                                     "' (expected groups or rules)");
    }
  }
  if (const YAML::Node g = root["groups"]; g) {
    if (!g.IsMap()) return Status::InvalidArgument(Where(source, g) + "groups must be a map");
    for (const auto& item : g) {
      std::vector<std::string> members;
      Status s = ReadStrings(item.second, source, "a group", &members);
      if (!s.ok()) return s;
      for (const std::string& m : members) {
        if (m.empty() || m[0] == '@' || m == kAnyone) {
          return Status::InvalidArgument(Where(source, item.second) + "group member '" + m +
                                         "': a key name (groups do not nest)");
        }
        named.insert(m);
      }
      groups[item.first.Scalar()] = std::move(members);
    }
  }
  const YAML::Node rules = root["rules"];
  if (!rules || !rules.IsSequence()) {
    return Status::InvalidArgument(source + ": `rules` must be a list (an empty list denies all)");
  }
  for (const YAML::Node& rule : rules) {
    if (!rule.IsMap()) return Status::InvalidArgument(Where(source, rule) + "a rule is a map");
    Grants grants;
    std::vector<std::string> peers;
    bool has_peers = false;
    for (const auto& field : rule) {
      const std::string name = field.first.Scalar();
      Status s;
      if (name == "peers") {
        has_peers = true;
        s = ReadStrings(field.second, source, "peers", &peers);
      } else if (name == "call" || name == "serve") {
        auto* patterns = name == "call" ? &grants.call : &grants.serve;
        s = ReadStrings(field.second, source, name.c_str(), patterns);
        for (size_t i = 0; s.ok() && i < patterns->size(); ++i) {
          s = CheckServicePattern(field.second, source, name.c_str(), (*patterns)[i]);
        }
      } else if (name == "publish") {
        s = ReadTopics(field.second, source, "publish", &grants.publish);
      } else if (name == "subscribe") {
        s = ReadTopics(field.second, source, "subscribe", &grants.subscribe);
      } else {
        s = Status::InvalidArgument(Where(source, field.first) + "unknown rule field '" + name +
                                    "' (expected peers, call, serve, publish, subscribe)");
      }
      if (!s.ok()) return s;
    }
    if (!has_peers || peers.empty()) {
      return Status::InvalidArgument(Where(source, rule) +
                                     "a rule needs `peers`: key names, @groups or \"*\"");
    }
    // Expand groups; each peer gets the rule's grants.
    std::vector<std::string> expanded;
    for (const std::string& p : peers) {
      if (!p.empty() && p[0] == '@') {
        auto it = groups.find(std::string_view(p).substr(1));
        if (it == groups.end()) {
          return Status::InvalidArgument(Where(source, rule) + "no group '" + p.substr(1) + "'");
        }
        Append(&expanded, it->second);
      } else if (p.empty()) {
        return Status::InvalidArgument(Where(source, rule) + "an empty peer name");
      } else {
        expanded.push_back(p);
        if (p != kAnyone) named.insert(p);
      }
    }
    for (const std::string& p : expanded) Merge(&policy->by_peer_[p], grants);
    ++policy->rule_count_;
  }
  // Everyone also has what "*" has.
  if (auto it = policy->by_peer_.find(kAnyone); it != policy->by_peer_.end()) {
    policy->anyone_ = it->second;
    policy->has_anyone_ = true;
    for (auto& [peer, grants] : policy->by_peer_) {
      if (peer != kAnyone && peer != kAnonymousPeer) Merge(&grants, policy->anyone_);
    }
  }
  policy->named_peers_.assign(named.begin(), named.end());
  return std::shared_ptr<const AccessPolicy>(std::move(policy));
}

const AccessPolicy::Grants* AccessPolicy::Find(std::string_view peer) const {
  // An unauthenticated peer (empty name) is no key: "*" is "any key".
  if (peer.empty()) return nullptr;
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) return &it->second;
  return has_anyone_ && peer != kAnonymousPeer ? &anyone_ : nullptr;
}

bool AccessPolicy::MayCall(std::string_view peer, std::string_view service) const {
  const Grants* g = Find(peer);
  return g != nullptr && AnyPatternMatches(g->call, service);
}

bool AccessPolicy::MayServe(std::string_view peer, std::string_view service) const {
  const Grants* g = Find(peer);
  return g != nullptr && AnyPatternMatches(g->serve, service);
}

bool AccessPolicy::MayPublish(std::string_view peer, std::string_view bus,
                              std::string_view topic) const {
  const Grants* g = Find(peer);
  return g != nullptr && TopicAllowed(g->publish, bus, topic);
}

bool AccessPolicy::MaySubscribe(std::string_view peer, std::string_view bus,
                                std::string_view prefix) const {
  const Grants* g = Find(peer);
  return g != nullptr && TopicAllowed(g->subscribe, bus, prefix);
}

}  // namespace plantd::transport
