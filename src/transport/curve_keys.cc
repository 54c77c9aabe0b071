#include "transport/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace plantd::transport {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// A certificate is a few hundred bytes; anything far larger is not one.
constexpr std::uintmax_t kMaxCertificateBytes = std::uintmax_t{64} * 1024;

// The character's value in Z85, or -1.
int Z85Value(char c) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (size_t i = 0; i < kZ85Alphabet.size(); ++i) {
      t[static_cast<uint8_t>(kZ85Alphabet[i])] = static_cast<int8_t>(i);
    }
    return t;
  }();
  return table[static_cast<uint8_t>(c)];
}

// Erases a string that held key material before it is freed.
// explicit_bzero, not memset: the compiler may not drop it as a dead store.
void Erase(std::string& s) {
  if (!s.empty()) explicit_bzero(s.data(), s.size());
  s.clear();
}

std::string Where(const std::string& path, size_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// What a certificate file holds, keys decoded to raw bytes.
struct Certificate {
  std::string public_key;
  std::string secret_key;
  ~Certificate() { Erase(secret_key); }
};

// The value of a ZPL `name = value` line: quoted ("..." or '...') or bare,
// either followed by an optional # comment.
Status ParseValue(std::string_view raw, const std::string& where, std::string_view* value) {
  raw = Trim(raw);
  if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
    const size_t close = raw.find(raw.front(), 1);
    if (close == std::string_view::npos) {
      return Status::InvalidArgument(where + "the value's closing quote is missing");
    }
    const std::string_view after = Trim(raw.substr(close + 1));
    if (!after.empty() && after.front() != '#') {
      return Status::InvalidArgument(where + "unexpected text after the quoted value");
    }
    *value = raw.substr(1, close - 1);
    return Status::Ok();
  }
  *value = Trim(raw.substr(0, raw.find('#')));
  return Status::Ok();
}

// ZPL names: letters, digits and $ - _ @ . & + / (RFC 4).
bool IsZplName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("$-_@.&+/").find(c) != std::string_view::npos;
  });
}

Status DecodeKeyValue(std::string_view value, const std::string& where, std::string_view name,
                      std::string* key) {
  if (value.size() != kCurveKeyZ85Size || !Z85Decode(value, key)) {
    return Status::InvalidArgument(where + std::string(name) + " is not a " +
                                   std::to_string(kCurveKeyZ85Size) + "-character Z85 key");
  }
  return Status::Ok();
}

// Parses the zcert text of `path`. Only the `curve` section matters; the
// rest (metadata) is checked for form and otherwise ignored.
Status ParseCertificate(const std::string& path, std::string_view text, Certificate* cert) {
  std::string section;  // the current top-level section
  size_t number = 0;
  // Walks the text in place: a copy of a secret file's lines would need
  // erasing too.
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    ++number;
    const std::string_view content = Trim(line);
    if (content.empty() || content.front() == '#') continue;
    const size_t indent = line.find_first_not_of(' ');
    if (line[indent] == '\t') {
      return Status::InvalidArgument(Where(path, number) +
                                     "indent with spaces (4 per level), not tabs");
    }
    const size_t equals = content.find('=');
    const std::string_view name =
        Trim(equals == std::string_view::npos ? content : content.substr(0, equals));
    if (!IsZplName(name)) {
      return Status::InvalidArgument(Where(path, number) + "expected `name` or `name = value`");
    }
    if (equals == std::string_view::npos) {
      if (indent == 0) section = name;
      continue;
    }
    std::string_view value;
    Status status = ParseValue(content.substr(equals + 1), Where(path, number), &value);
    if (!status.ok()) return status;
    // Keys belong to the curve section, one level in (4 spaces).
    if (section != "curve" || indent != 4) continue;
    if (name == "public-key") {
      status = DecodeKeyValue(value, Where(path, number), name, &cert->public_key);
    } else if (name == "secret-key") {
      status = DecodeKeyValue(value, Where(path, number), name, &cert->secret_key);
    }
    if (!status.ok()) return status;
  }
  if (cert->public_key.empty()) {
    return Status::InvalidArgument(path + ": no public-key in a `curve` section");
  }
  return Status::Ok();
}

Status ReadCertificateText(const std::string& path, std::string* text) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) return Status::InvalidArgument(path + ": " + error.message());
  if (size > kMaxCertificateBytes) {
    return Status::InvalidArgument(path + ": " + std::to_string(size) +
                                   " bytes is too large for a certificate");
  }
  // read(2) into `text` itself, not through a stream: no library buffer
  // keeps a copy of a secret certificate's text.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::InvalidArgument(path + ": cannot open: " + std::strerror(errno));
  text->assign(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < text->size()) {
    const ssize_t n = ::read(fd, text->data() + done, text->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done != text->size()) {
    Erase(*text);
    return Status::InvalidArgument(path + ": read failed (the file changed while it was read?)");
  }
  return Status::Ok();
}

}  // namespace

bool Z85Encode(std::string_view data, std::string* text) {
  if (data.size() % 4 != 0) return false;
  text->clear();
  text->reserve(data.size() / 4 * 5);
  for (size_t i = 0; i < data.size(); i += 4) {
    uint32_t value = 0;
    for (size_t j = 0; j < 4; ++j) value = (value << 8) | static_cast<uint8_t>(data[i + j]);
    char group[5];
    for (int j = 4; j >= 0; --j) {
      group[j] = kZ85Alphabet[value % 85];
      value /= 85;
    }
    text->append(group, 5);
  }
  return true;
}

bool Z85Decode(std::string_view text, std::string* data) {
  if (text.size() % 5 != 0) return false;
  data->clear();
  data->reserve(text.size() / 5 * 4);
  for (size_t i = 0; i < text.size(); i += 5) {
    uint64_t value = 0;
    for (size_t j = 0; j < 5; ++j) {
      const int digit = Z85Value(text[i + j]);
      if (digit < 0) return false;
      value = value * 85 + static_cast<uint64_t>(digit);
    }
    if (value > UINT32_MAX) return false;  // "%%%%%" and the like
    for (int shift = 24; shift >= 0; shift -= 8) {
      data->push_back(static_cast<char>(value >> shift));
    }
  }
  return true;
}

// Through libzmq (zmq_curve_public), not libsodium: libplantd reads key
// files too and links only libzmq.
bool KeyPairMatches(std::string_view public_key, std::string_view secret_key) {
  if (public_key.size() != kCurveKeySize || secret_key.size() != kCurveKeySize) return false;
  std::string secret_z85;
  std::string public_z85;
  if (!Z85Encode(secret_key, &secret_z85) || !Z85Encode(public_key, &public_z85)) return false;
  char derived[kCurveKeyZ85Size + 1] = {};
  const bool derived_ok = zmq_curve_public(derived, secret_z85.c_str()) == 0;
  Erase(secret_z85);
  return derived_ok && public_z85 == derived;
}

Status LoadPublicKeyFile(const std::string& path, std::string* public_key) {
  std::string text;
  Status status = ReadCertificateText(path, &text);
  if (!status.ok()) return status;
  Certificate cert;
  status = ParseCertificate(path, text, &cert);
  // A secret certificate works here too; its secret must not linger.
  Erase(text);
  if (!status.ok()) return status;
  *public_key = cert.public_key;
  return Status::Ok();
}

Status LoadSecretKeyFile(const std::string& path, CurveKeyPair* keys) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::InvalidArgument(path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + ": not a regular file");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument(path + ": mode " + mode +
                                   " lets group or others read the secret key; run `chmod 600 " +
                                   path + "`");
  }
  std::string text;
  Status status = ReadCertificateText(path, &text);
  if (!status.ok()) return status;
  Certificate cert;
  status = ParseCertificate(path, text, &cert);
  Erase(text);
  if (!status.ok()) return status;
  if (cert.secret_key.empty()) {
    return Status::InvalidArgument(path +
                                   ": no secret-key in its `curve` section (a public "
                                   "certificate? zcert names the secret one *_secret)");
  }
  if (!KeyPairMatches(cert.public_key, cert.secret_key)) {
    return Status::InvalidArgument(path + ": secret-key is not the secret of public-key");
  }
  keys->public_key = cert.public_key;
  keys->secret_key = cert.secret_key;
  return Status::Ok();
}

Status LoadPublicKeysFromDirectory(const std::string& directory,
                                   std::vector<CurvePublicKeyFile>* keys) {
  std::error_code error;
  std::filesystem::directory_iterator it(directory, error);
  if (error) return Status::InvalidArgument(directory + ": " + error.message());
  std::vector<std::string> paths;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return Status::InvalidArgument(directory + ": " + error.message());
    if (it->is_regular_file(error)) paths.push_back(it->path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<CurvePublicKeyFile> loaded;
  loaded.reserve(paths.size());
  for (const std::string& path : paths) {
    CurvePublicKeyFile file{.path = path, .public_key = {}};
    Status status = LoadPublicKeyFile(path, &file.public_key);
    if (!status.ok()) return status;
    loaded.push_back(std::move(file));
  }
  *keys = std::move(loaded);
  return Status::Ok();
}

}  // namespace plantd::transport
