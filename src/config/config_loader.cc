#include "config/config_loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "common/units.h"
#include "config/config_keys.h"

extern char** environ;

namespace plantd {
namespace {

std::string Where(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1);
}

// "a " or "an ", for "an endpoint", "a key".
const char* Article(const std::string& noun) {
  return !noun.empty() && std::string_view("aeiou").find(noun[0]) != std::string_view::npos ? "an "
                                                                                            : "a ";
}

const char* NodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "no value";
    default: return "a single value";
  }
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Where each YAML document of a text starts, and nothing else: lets the reader
// count documents without building them.
class DocumentStarts : public YAML::EventHandler {
 public:
  const std::vector<YAML::Mark>& starts() const { return starts_; }

  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  std::vector<YAML::Mark> starts_;
};

// The keys one section ("limits") holds, for an error that says what goes there.
std::string SectionKeys(const std::string& section) {
  std::vector<std::string> keys;
  for (const auto& spec : BrokerKeys()) {
    if (spec.alias_of.empty() && spec.key.rfind(section + ".", 0) == 0) {
      keys.push_back(spec.key.substr(section.size() + 1));
    }
  }
  return Join(keys);
}

// Reads one YAML file into LoadedConfig. Every mapping is checked for
// duplicate keys (yaml-cpp keeps both and `node[key]` finds the first), every
// value for its YAML kind before its text is parsed, and errors carry the
// key's FILE:LINE.
class FileReader {
 public:
  FileReader(const std::string& path, LoadedConfig* out) : path_(path), out_(out) {}

  void Read() {
    std::ifstream file(path_, std::ios::binary);
    if (!file) {
      out_->errors.push_back({"config", "PLANTD_BROKER_CONFIG / --config", path_,
                              "cannot open the configuration file"});
      return;
    }
    // yaml-cpp reads about 2-3 MB/s: a file named by mistake (a log, a core
    // dump) would hold start-up for minutes. Read at most one byte too many.
    std::string text(kMaxConfigFileBytes + 1, '\0');
    file.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(file.gcount()));
    if (text.size() > kMaxConfigFileBytes) {
      out_->errors.push_back({"config", "PLANTD_BROKER_CONFIG / --config", path_,
                              "larger than " + FormatByteSize(kMaxConfigFileBytes) +
                                  "; is this the configuration file?"});
      return;
    }
    // Count the documents (at most two are needed) before loading the first.
    // Not YAML::LoadAll: on some invalid input (a lone "," line) yaml-cpp
    // 0.7's parser returns the same empty document forever without reading
    // on (yaml-cpp#1040), and LoadAll collects them until memory runs out.
    // A document that starts where the previous one did is that loop.
    DocumentStarts documents;
    YAML::Node root;
    try {
      std::istringstream in(text);
      YAML::Parser parser(in);
      while (documents.starts().size() < 2 && parser.HandleNextDocument(documents)) {
      }
      if (documents.starts().empty()) return;  // an empty file configures nothing
      if (documents.starts().size() > 1) {
        const YAML::Mark& second = documents.starts()[1];
        if (second.pos <= documents.starts()[0].pos) {
          out_->errors.push_back({"config", path_ + ":" + std::to_string(second.line + 1), "",
                                  "not valid YAML: the parser cannot read on from here"});
        } else {
          out_->errors.push_back({"config", path_ + ":" + std::to_string(second.line + 1), "",
                                  "more than one YAML document (---); put every key in one"});
        }
        return;
      }
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      out_->errors.push_back({"config", path_ + ":" + std::to_string(e.mark.line + 1), "",
                              "not valid YAML: " + e.msg});
      return;
    }
    if (root.IsNull()) return;
    if (!root.IsMap()) {
      out_->errors.push_back(
          {"config", Where(path_, root), "",
           std::string("expected a mapping of keys to values, got ") + NodeKind(root)});
      return;
    }
    try {
      ReadMap(root, "");
    } catch (const YAML::Exception& e) {
      out_->errors.push_back(
          {"config", path_ + ":" + std::to_string(e.mark.line + 1), "", "cannot read: " + e.msg});
    }
  }

 private:
  // Calls `each(name, key_node, value_node)` for every entry of `map`, after
  // refusing entries whose key is not a plain name or repeats an earlier one.
  template <typename Each>
  void ForEachEntry(const YAML::Node& map, const std::string& prefix, Each each) {
    std::map<std::string, int> first_line;
    for (const auto& item : map) {
      if (!item.first.IsScalar()) {
        out_->errors.push_back({prefix.empty() ? "config" : prefix, Where(path_, item.first), "",
                                std::string("expected a key name, got ") + NodeKind(item.first)});
        continue;
      }
      const std::string name = item.first.Scalar();
      const int line = item.first.Mark().line + 1;
      auto [it, inserted] = first_line.emplace(name, line);
      if (!inserted) {
        out_->errors.push_back(
            {prefix + name, Where(path_, item.first), "",
             "duplicate key; first given at line " + std::to_string(it->second) + " (remove one)"});
        continue;
      }
      each(name, item.first, item.second);
    }
  }

  void ReadMap(const YAML::Node& map, const std::string& prefix) {
    ForEachEntry(
        map, prefix,
        [&](const std::string& name, const YAML::Node& key_node, const YAML::Node& value) {
          const std::string key = prefix + name;
          if (key == "buses") {
            ReadBuses(key_node, value);
          } else if (const KeySpec<BrokerOptions>* spec = FindBrokerKey(key);
                     spec != nullptr && spec->mutable_items) {
            ReadList(key, spec->item, key_node, value, &spec->mutable_items(out_->options));
          } else if (spec != nullptr) {
            if (ReadScalar(*spec, key, key_node, value, &out_->options)) {
              out_->origins[spec->canonical()] = Where(path_, key_node);
            }
          } else if (IsKeySection(key)) {
            if (value.IsMap()) {
              ReadMap(value, key + ".");
            } else if (!value.IsNull()) {  // "limits:" alone sets nothing
              out_->errors.push_back({key, Where(path_, key_node), "",
                                      std::string("expected a mapping with ") + SectionKeys(key) +
                                          ", got " + NodeKind(value)});
            }
          } else {
            out_->warnings.push_back(
                {key, Where(path_, key_node), "", "unknown key, ignored (check its spelling)"});
          }
        });
  }

  // Parses one value of a scalar key into `target`; false after an error.
  template <typename Target>
  bool ReadScalar(const KeySpec<Target>& spec, const std::string& key, const YAML::Node& key_node,
                  const YAML::Node& value, Target* target) {
    const std::string where = Where(path_, key_node);
    if (!value.IsScalar()) {
      out_->errors.push_back(
          {key, where, "", "expected " + Expectation(spec) + ", got " + NodeKind(value)});
      return false;
    }
    const std::string& text = value.Scalar();
    Status s = spec.set(*target, text);
    if (!s.ok()) {
      out_->errors.push_back({key, where, text, s.message()});
      return false;
    }
    return true;
  }

  void ReadList(const std::string& key, const std::string& item, const YAML::Node& key_node,
                const YAML::Node& value, std::vector<std::string>* out) {
    if (!value.IsSequence()) {
      out_->errors.push_back({key, Where(path_, key_node), "",
                              "expected a list of " + item + "s, got " + NodeKind(value)});
      return;
    }
    out->clear();
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item_key = key + "[" + std::to_string(i) + "]";
      if (!value[i].IsScalar()) {
        out_->errors.push_back(
            {item_key, Where(path_, value[i]), "",
             std::string("expected ") + Article(item) + item + ", got " + NodeKind(value[i])});
        continue;
      }
      out->push_back(value[i].Scalar());
      out_->origins[item_key] = Where(path_, value[i]);
    }
  }

  void ReadBuses(const YAML::Node& key_node, const YAML::Node& value) {
    out_->options.buses.clear();
    out_->origins["buses"] = Where(path_, key_node);
    if (value.IsNull()) return;
    if (!value.IsSequence()) {
      out_->errors.push_back({"buses", Where(path_, key_node), "",
                              std::string("expected a list of buses, got ") + NodeKind(value)});
      return;
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node& node = value[i];
      const std::string prefix = "buses[" + std::to_string(i) + "].";
      BusOptions bus;
      if (!node.IsMap()) {
        out_->errors.push_back({"buses[" + std::to_string(i) + "]", Where(path_, node), "",
                                std::string("expected a mapping with name, backend and "
                                            "frontend, got ") +
                                    NodeKind(node)});
        continue;
      }
      ForEachEntry(node, prefix,
                   [&](const std::string& field, const YAML::Node& key_node, const YAML::Node& v) {
                     const std::string key = prefix + field;
                     const KeySpec<BusOptions>* spec = FindBusKey(field);
                     if (spec == nullptr) {
                       out_->warnings.push_back({key, Where(path_, key_node), "",
                                                 "unknown bus key, ignored (check its spelling)"});
                       return;
                     }
                     if (ReadScalar(*spec, key, key_node, v, &bus)) {
                       out_->origins[key] = Where(path_, key_node);
                     }
                   });
      out_->options.buses.push_back(std::move(bus));
    }
  }

  const std::string path_;
  LoadedConfig* out_;
};

void ApplyOverride(const KeySpec<BrokerOptions>& spec, const std::string& value,
                   const std::string& origin, LoadedConfig* out) {
  Status s = spec.set(out->options, value);
  if (!s.ok()) {
    out->errors.push_back({spec.key, origin, value, s.message()});
    return;
  }
  out->origins[spec.canonical()] = origin;
}

std::string Quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return s;
  std::string q = "\"";
  // YAML double-quoted escapes, so that any value, even one with a line
  // break the validation would refuse, prints as one line that loads back.
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      q += '\\';
      q += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      q += "\\x";
      q += kHex[byte >> 4];
      q += kHex[byte & 0xf];
    } else {
      q += c;
    }
  }
  return q + "\"";
}

}  // namespace

LoadedConfig LoadConfig(const ConfigSources& sources) {
  LoadedConfig out;
  if (sources.file_path) {
    out.file_path = *sources.file_path;
  } else if (auto it = sources.environment.find("PLANTD_BROKER_CONFIG");
             it != sources.environment.end() && !it->second.empty()) {
    out.file_path = it->second;
  }
  if (!out.file_path.empty()) FileReader(out.file_path, &out).Read();

  std::set<std::string> known_env = {"PLANTD_BROKER_CONFIG"};
  for (const auto& spec : BrokerKeys()) {
    if (spec.env.empty()) continue;
    known_env.insert(spec.env);
    if (auto it = sources.environment.find(spec.env); it != sources.environment.end()) {
      ApplyOverride(spec, it->second, "env " + spec.env, &out);
    }
  }
  // A misspelt variable would otherwise leave its key at the default unseen.
  // PLANTD_BROKER_TEST_* belong to test builds.
  for (const auto& [name, value] : sources.environment) {
    if (name.rfind("PLANTD_BROKER_", 0) == 0 && name.rfind("PLANTD_BROKER_TEST_", 0) != 0 &&
        known_env.count(name) == 0) {
      out.warnings.push_back({name, "environment", "",
                              "unknown PLANTD_BROKER_ variable, ignored (check its spelling)"});
    }
  }
  for (const auto& [key, value] : sources.flags) {
    const KeySpec<BrokerOptions>* spec = FindBrokerKey(key);
    if (spec != nullptr && !spec->flag.empty()) {
      ApplyOverride(*spec, value, "flag --" + spec->flag, &out);
    }
  }
  if (out.errors.empty()) {
    for (ConfigIssue& issue : Validate(out.options, out.origins)) {
      out.errors.push_back(std::move(issue));
    }
  }
  return out;
}

std::string RenderConfigYaml(const LoadedConfig& config) {
  const BrokerOptions& o = config.options;
  auto origin = [&config](const std::string& key) {
    auto it = config.origins.find(key);
    return it == config.origins.end() ? std::string("default") : it->second;
  };
  std::ostringstream y;
  y << "# plantd-broker effective configuration; '#' gives where each value came from\n";
  std::string section;
  for (const auto& spec : BrokerKeys()) {
    // Aliases are shown under their canonical key, the buses below.
    if (!spec.get && !spec.items) continue;
    std::string name = spec.key;
    const size_t dot = name.find('.');
    std::string indent;
    if (dot != std::string::npos) {
      const std::string parent = name.substr(0, dot);
      if (parent != section) y << parent << ":\n";
      section = parent;
      name = name.substr(dot + 1);
      indent = "  ";
    } else {
      section.clear();
    }
    if (spec.items) {
      const std::vector<std::string>& items = spec.items(o);
      y << indent << name << ":" << (items.empty() ? " []" : "") << "\n";
      for (size_t i = 0; i < items.size(); ++i) {
        y << indent << "  - " << Quote(items[i]) << "  # "
          << origin(spec.key + "[" + std::to_string(i) + "]") << "\n";
      }
      continue;
    }
    y << indent << name << ": " << Quote(spec.get(o)) << "  # " << origin(spec.key) << "\n";
  }
  y << "buses:" << (o.buses.empty() ? " []" : "") << "  # " << origin("buses") << "\n";
  for (size_t i = 0; i < o.buses.size(); ++i) {
    const std::string prefix = "buses[" + std::to_string(i) + "].";
    bool first = true;
    for (const auto& spec : BusKeys()) {
      y << (first ? "  - " : "    ") << spec.key << ": " << Quote(spec.get(o.buses[i])) << "  # "
        << origin(prefix + spec.key) << "\n";
      first = false;
    }
  }
  return y.str();
}

std::vector<ConfigFlag> ConfigFlags() {
  std::vector<ConfigFlag> flags;
  for (const KeyDoc& d : DocumentedKeys()) {
    if (d.flag.empty()) continue;
    std::string type = d.type;
    for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string help = d.doc + " (" + (d.range.empty() ? "" : d.range + "; ") + "default " +
                       (d.default_value.empty() ? "\"\"" : d.default_value) + ") [" + d.key + ", " +
                       d.env + "]";
    flags.push_back({d.flag, d.key, std::move(help), std::move(type)});
  }
  return flags;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

std::vector<std::string> ChangedKeys(const BrokerOptions& before, const BrokerOptions& after) {
  std::vector<std::string> changed;
  for (const auto& spec : BrokerKeys()) {
    if ((spec.get && spec.get(before) != spec.get(after)) ||
        (spec.items && spec.items(before) != spec.items(after))) {
      changed.push_back(spec.key);
    }
  }
  bool buses_changed = before.buses.size() != after.buses.size();
  for (size_t i = 0; !buses_changed && i < before.buses.size(); ++i) {
    for (const auto& spec : BusKeys()) {
      if (spec.get(before.buses[i]) != spec.get(after.buses[i])) buses_changed = true;
    }
  }
  if (buses_changed) changed.push_back("buses");
  return changed;
}

}  // namespace plantd
