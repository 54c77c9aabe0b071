#include "transport/server_security.h"

#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "transport/zmtp_curve_mechanism.h"
#include "transport/zmtp_null_mechanism.h"

namespace plantd::transport {

ServerSecurity::~ServerSecurity() {
  if (!keys_.secret_key.empty()) sodium_memzero(keys_.secret_key.data(), keys_.secret_key.size());
}

Result<std::shared_ptr<ServerSecurity>> ServerSecurity::LoadCurve(CurveFiles files) {
  if (!InitSodium()) return Status::Error("libsodium cannot be initialised");
  auto security = std::make_shared<ServerSecurity>();
  security->curve_ = true;
  if (Status s = LoadSecretKeyFile(files.secret_key_file, &security->keys_); !s.ok()) {
    return Status::InvalidArgument("security.secret_key_file: " + s.message());
  }
  security->authorized_keys_dir_ = std::move(files.authorized_keys_dir);
  security->listed_keys_ = std::move(files.authorized_keys);
  auto keys = ReadKeys(security->authorized_keys_dir_, security->listed_keys_);
  if (!keys.ok()) return keys.status();
  security->authorized_ = std::move(keys.value());
  security->any_key_ = security->authorized_keys_dir_.empty() && security->listed_keys_.empty();
  security->acl_file_ = std::move(files.acl_file);
  if (!security->acl_file_.empty()) {
    auto policy = AccessPolicy::Load(security->acl_file_);
    if (!policy.ok())
      return Status::InvalidArgument("security.acl_file: " + policy.status().message());
    security->policy_ = std::move(policy.value());
  }
  security->null_endpoints_ = std::move(files.null_endpoints);
  return security;
}

bool ServerSecurity::NullAcceptedOn(std::string_view address) const {
  if (!curve_) return true;
  return std::find(null_endpoints_.begin(), null_endpoints_.end(), address) !=
         null_endpoints_.end();
}

std::shared_ptr<const AccessPolicy> ServerSecurity::policy() const {
  std::lock_guard lock(mutex_);
  return policy_;
}

Result<std::shared_ptr<const ServerSecurity::KeySet>> ServerSecurity::ReadKeys(
    const std::string& directory, const std::vector<std::string>& listed) {
  auto set = std::make_shared<KeySet>();
  if (!directory.empty()) {
    std::vector<CurvePublicKeyFile> files;
    if (Status s = LoadPublicKeysFromDirectory(directory, &files); !s.ok()) {
      return Status::InvalidArgument("security.authorized_keys_dir: " + s.message());
    }
    for (CurvePublicKeyFile& file : files) {
      std::string name = std::filesystem::path(file.path).filename().string();
      if (name == kAnonymousPeer) {
        return Status::InvalidArgument("security.authorized_keys_dir: " + file.path +
                                       ": the name \"" + std::string(kAnonymousPeer) +
                                       "\" is kept for peers of security.null_endpoints; "
                                       "rename the certificate");
      }
      set->insert_or_assign(std::move(file.public_key), std::move(name));
    }
  }
  // "KEY NAME" (config Validate checked the form). A key or name that a
  // certificate file has already is a mistake: which name would apply?
  for (const std::string& entry : listed) {
    const size_t space = entry.find(' ');
    std::string key;
    if (space == std::string::npos || !Z85Decode(entry.substr(0, space), &key) ||
        key.size() != 32) {
      return Status::InvalidArgument("security.authorized_keys: \"" + entry +
                                     "\" is not \"KEY NAME\" with a Z85 public key");
    }
    std::string name = entry.substr(space + 1);
    if (name == kAnonymousPeer) {
      return Status::InvalidArgument("security.authorized_keys: the name \"" + name +
                                     "\" is kept for peers of security.null_endpoints");
    }
    if (auto it = set->find(key); it != set->end()) {
      return Status::InvalidArgument("security.authorized_keys: the key named " + name +
                                     " is authorized already, as " + it->second);
    }
    for (const auto& [other_key, other_name] : *set) {
      if (other_name == name) {
        std::string message = "security.authorized_keys: the name " + name;
        message += " is taken already (by a certificate in " + directory + ")";
        return Status::InvalidArgument(message);
      }
    }
    set->insert_or_assign(std::move(key), std::move(name));
  }
  return std::shared_ptr<const KeySet>(std::move(set));
}

std::shared_ptr<const ServerSecurity::KeySet> ServerSecurity::keys() const {
  std::lock_guard lock(mutex_);
  return authorized_;
}

bool ServerSecurity::Authorized(std::string_view client_key) const {
  if (!curve_) return true;
  std::lock_guard lock(mutex_);
  return any_key_ || (authorized_ != nullptr && authorized_->contains(client_key));
}

bool ServerSecurity::any_key() const {
  std::lock_guard lock(mutex_);
  return any_key_;
}

std::string ServerSecurity::KeyName(std::string_view client_key) const {
  if (const auto set = keys(); set != nullptr) {
    if (auto it = set->find(client_key); it != set->end()) return it->second;
  }
  std::string text;
  if (!Z85Encode(client_key, &text)) return {};
  return text;
}

bool ServerSecurity::HasKeyNamed(std::string_view name) const {
  const auto set = keys();
  if (set == nullptr) return false;
  for (const auto& [key, file_name] : *set) {
    if (file_name == name) return true;
  }
  return false;
}

size_t ServerSecurity::authorized_count() const {
  const auto set = keys();
  return set == nullptr ? 0 : set->size();
}

Status ServerSecurity::Reload(const std::vector<std::string>* authorized_keys) {
  if (!curve_) return Status::Ok();
  // Both read before either is replaced: a mistake in one file leaves the
  // broker on the old keys and the old rules, not on a mix.
  std::vector<std::string> listed;
  {
    std::lock_guard lock(mutex_);
    listed = authorized_keys != nullptr ? *authorized_keys : listed_keys_;
  }
  auto read = ReadKeys(authorized_keys_dir_, listed);
  if (!read.ok()) return read.status();
  std::shared_ptr<const KeySet> keys = std::move(read.value());
  std::shared_ptr<const AccessPolicy> policy;
  if (!acl_file_.empty()) {
    auto read = AccessPolicy::Load(acl_file_);
    if (!read.ok()) return Status::InvalidArgument("security.acl_file: " + read.status().message());
    policy = std::move(read.value());
  }
  {
    std::lock_guard lock(mutex_);
    // Keys where there were none close the door to any key; the reverse
    // (every listed key removed, no directory) leaves it closed.
    any_key_ = any_key_ && keys->empty();
    authorized_ = std::move(keys);
    listed_keys_ = std::move(listed);
    policy_ = std::move(policy);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return Status::Ok();
}

std::unique_ptr<ZmtpMechanism> ServerSecurity::MakeMechanism(const std::string& socket_type) const {
  if (!curve_) return std::make_unique<ZmtpNullMechanism>(socket_type);
  CurveServerOptions options{
      .public_key = keys_.public_key, .secret_key = keys_.secret_key, .socket_type = socket_type};
  options.authorize = [this](std::string_view client_key) { return Authorized(client_key); };
  return std::make_unique<ZmtpCurveServerMechanism>(std::move(options));
}

}  // namespace plantd::transport
