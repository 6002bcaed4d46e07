#include "common/secret_reference.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "tests/map_environment.h"

namespace modelpulse {
namespace {

struct Outcome {
  std::optional<Secret> secret;
  std::string problems;            // Diagnostics::ToError's message, "" when none
  std::vector<std::string> files;  // passed to on_file_read
};

// Reads `key: reference` from a one-line document, with the config in /etc/mp.
Outcome Read(SecretSource source, const std::string& reference, const Environment& env) {
  const YAML::Node root = YAML::Load("key: " + reference);
  yaml::Diagnostics diag;
  const yaml::Entry entry{"key", YAML::Node("key"), root["key"]};
  Outcome out;
  const std::string folder = "/etc/mp";
  out.secret = ReadSecretReference(
      source, entry, "auth.key",
      {diag, env, folder, [&](const std::string& file) { out.files.push_back(file); }});
  if (!diag.empty()) {
    out.problems = diag.ToError("mp.yml").message;
  }
  return out;
}

}  // namespace

TEST_CASE("ReadSecretReference resolves variables, files and systemd credentials") {
  testing::MapEnvironment env;
  env.vars = {{"API_KEY", "sk-env"}, {"EMPTY", ""}, {"CREDENTIALS_DIRECTORY", "/run/creds/mp"}};
  env.files = {{"/etc/mp/key.txt", "sk-file\r\n\n"},
               {"/run/creds/mp/openai", "sk-cred\n"},
               {"/etc/mp/blank", "\n"}};

  Outcome from_env = Read(SecretSource::kEnv, "API_KEY", env);
  REQUIRE(from_env.secret);
  CHECK(from_env.secret->Reveal() == "sk-env");
  CHECK(from_env.files.empty());

  // Relative to the config's folder, trailing line breaks dropped, and the file reported so
  // the caller can check who may read it.
  Outcome from_file = Read(SecretSource::kFile, "key.txt", env);
  REQUIRE(from_file.secret);
  CHECK(from_file.secret->Reveal() == "sk-file");
  CHECK(from_file.files == std::vector<std::string>{"/etc/mp/key.txt"});

  Outcome from_credential = Read(SecretSource::kCredential, "openai", env);
  REQUIRE(from_credential.secret);
  CHECK(from_credential.secret->Reveal() == "sk-cred");
  CHECK(from_credential.files == std::vector<std::string>{"/run/creds/mp/openai"});
}

TEST_CASE("ReadSecretReference names what is wrong, never a value") {
  testing::MapEnvironment env;
  env.vars = {{"EMPTY", ""}};
  env.files = {{"/etc/mp/blank", "\n"}};
  const auto problem = [&](SecretSource source, const std::string& reference) {
    Outcome out = Read(source, reference, env);
    CHECK_FALSE(out.secret);
    return out.problems;
  };
  CHECK(problem(SecretSource::kEnv, "UNSET") ==
        "mp.yml:1:6: \"auth.key\": environment variable UNSET is not set");
  CHECK(problem(SecretSource::kEnv, "EMPTY") ==
        "mp.yml:1:6: \"auth.key\": environment variable EMPTY is empty");
  CHECK(problem(SecretSource::kEnv, "not-a-name") ==
        "mp.yml:1:6: \"auth.key\": \"not-a-name\" is not a valid environment variable name");
  CHECK(problem(SecretSource::kFile, "blank") ==
        "mp.yml:1:6: \"auth.key\": file /etc/mp/blank is empty");
  CHECK(problem(SecretSource::kFile, "missing") ==
        "mp.yml:1:6: \"auth.key\": cannot read /etc/mp/missing: No such file or directory");
  CHECK(problem(SecretSource::kCredential, "openai")
            .find("credential openai needs $CREDENTIALS_DIRECTORY, which is not set") !=
        std::string::npos);
  env.vars["CREDENTIALS_DIRECTORY"] = "/run/creds/mp";
  CHECK(problem(SecretSource::kCredential, "../etc/passwd") ==
        "mp.yml:1:6: \"auth.key\": a credential name cannot contain '/'");
}

TEST_CASE("SecretFileExposure warns about files the group or others can read") {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("mp-secret-" + std::to_string(::getpid()));
  std::ofstream(file) << "sk-test\n";
  ::chmod(file.c_str(), 0600);
  CHECK_FALSE(SecretFileExposure(file.string()));
  ::chmod(file.c_str(), 0640);
  const std::optional<std::string> group = SecretFileExposure(file.string());
  REQUIRE(group);
  CHECK(group->find("readable by its group (mode 0640)") != std::string::npos);
  ::chmod(file.c_str(), 0644);
  const std::optional<std::string> others = SecretFileExposure(file.string());
  REQUIRE(others);
  CHECK(*others == "secret file " + file.string() +
                       " is readable by others (mode 0644); only its owner should read it: "
                       "chmod 600 " +
                       file.string());
  CHECK(others->find("sk-test") == std::string::npos);
  std::filesystem::remove(file);
  CHECK_FALSE(SecretFileExposure(file.string()));  // gone: reading it reports that
  CHECK_FALSE(SecretFileExposure("/tmp"));         // not a regular file
}

}  // namespace modelpulse
