// libplantd's CurveOptions: what a client, worker or bus helper is given.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "plantd/curve.h"

namespace plantd {
namespace {

struct Z85Pair {
  std::string public_key;
  std::string secret_key;
};

Z85Pair MakePair() {
  char public_key[41] = {};
  char secret_key[41] = {};
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return {public_key, secret_key};
}

TEST(CurveOptions, NothingSetIsNullAndValid) {
  CurveOptions curve;
  EXPECT_FALSE(curve.enabled());
  EXPECT_TRUE(curve.Validate().ok());
}

TEST(CurveOptions, ValidateSaysWhichKeyIsWrongWithoutQuotingIt) {
  const Z85Pair server = MakePair();
  const Z85Pair own = MakePair();
  const Z85Pair other = MakePair();
  EXPECT_TRUE((CurveOptions{.server_key = server.public_key}.Validate().ok()))
      << "a server key alone: a fresh pair per connection";
  EXPECT_TRUE((CurveOptions{server.public_key, own.public_key, own.secret_key}.Validate().ok()));

  Status s = CurveOptions{"short", "", ""}.Validate();
  EXPECT_EQ(s.message(), "curve server_key must be 40 characters of Z85, not 5");
  s = CurveOptions{std::string(40, ' '), "", ""}.Validate();
  EXPECT_EQ(s.message(), "curve server_key is not valid Z85");
  s = CurveOptions{server.public_key, own.public_key, ""}.Validate();
  EXPECT_EQ(s.message(),
            "curve public_key and secret_key go together: give both, or neither for a fresh pair");
  s = CurveOptions{server.public_key, own.public_key, other.secret_key}.Validate();
  EXPECT_EQ(s.message(), "curve secret_key is not the secret of public_key");
  s = CurveOptions{server.public_key, own.public_key, own.secret_key.substr(1) + "~"}.Validate();
  EXPECT_EQ(s.message(), "curve secret_key is not valid Z85");
  EXPECT_EQ(s.message().find(own.secret_key.substr(1)), std::string::npos);
  s = CurveOptions{"", own.public_key, own.secret_key}.Validate();
  EXPECT_EQ(s.message(), "curve keys given without the broker's server_key");
}

class CurveFilesTest : public ::testing::Test {
 protected:
  CurveFilesTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("plantd-curve-options-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  ~CurveFilesTest() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const Z85Pair& keys, bool secret, mode_t mode) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path);
    out << "metadata\ncurve\n    public-key = \"" << keys.public_key << "\"\n";
    if (secret) out << "    secret-key = \"" << keys.secret_key << "\"\n";
    out.close();
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(CurveFilesTest, LoadsTheServersPublicAndOwnSecretCertificate) {
  const Z85Pair server = MakePair();
  const Z85Pair own = MakePair();
  const std::string server_file = Write("broker", server, false, 0644);
  const std::string own_file = Write("me_secret", own, true, 0600);
  auto curve = LoadCurveOptions(server_file, own_file);
  ASSERT_TRUE(curve.ok()) << curve.status().message();
  EXPECT_EQ(curve->server_key, server.public_key);
  EXPECT_EQ(curve->public_key, own.public_key);
  EXPECT_EQ(curve->secret_key, own.secret_key);

  auto server_only = LoadCurveOptions(server_file, "");
  ASSERT_TRUE(server_only.ok());
  EXPECT_TRUE(server_only->enabled());
  EXPECT_TRUE(server_only->public_key.empty());
}

TEST_F(CurveFilesTest, RefusesASecretCertificateOthersMayRead) {
  const std::string server_file = Write("broker", MakePair(), false, 0644);
  const std::string own_file = Write("me_secret", MakePair(), true, 0644);
  auto curve = LoadCurveOptions(server_file, own_file);
  ASSERT_FALSE(curve.ok());
  EXPECT_NE(curve.status().message().find("chmod 600"), std::string::npos)
      << curve.status().message();
  auto missing = LoadCurveOptions((dir_ / "nothing").string(), own_file);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nothing"), std::string::npos);
}

}  // namespace
}  // namespace plantd
