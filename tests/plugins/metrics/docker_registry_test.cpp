// The docker_registry images driver against a real registry (the CNCF distribution server,
// Debian's docker-registry) into which each test pushes tiny images over plain HTTP, and against
// the test HTTP server for bearer-token auth and misbehaviour.
#include "plugins/docker_registry/docker_registry.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <iostream>
#include <vector>

#include "plugins/docker_registry/image_ref.h"
#include "plugins/docker_registry/sha256.h"
#include "plugins/http/http.h"
#include "tests/plugins/metrics/metrics_support.h"

using namespace gray;
using namespace gray::plugins;
using namespace gray::testing;
using namespace gray::testing::metrics;
using docker_registry::content_digest;
using Status = Result::Status;

namespace {

const std::string kUser = "gray";
const std::string kPassword = "gray-test-pw";
// bcrypt (cost 4) of kPassword, as htpasswd writes it.
const std::string kHtpasswd = "gray:$2b$04$5FtzNekaoptByn5Y3bL.9OUSLb.58rDwySN9nofWKdO6uWYgzjMka\n";

// A docker-registry on 127.0.0.1 with filesystem storage in a temp dir, optionally behind Basic auth.
class Registry {
 public:
  explicit Registry(bool basic_auth = false) {
    if (find_program("docker-registry").empty())
      throw std::runtime_error("docker-registry is not installed: apt-get install docker-registry (see .ci/deps)");
    dir_ = make_temp_dir("gray-registry");
    port_ = free_port();
    std::string cfg =
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
        dir_ +
        "/data\n"
        "http:\n  addr: 127.0.0.1:" +
        std::to_string(port_) + "\n  secret: gray-test\n";
    if (basic_auth) {
      write_file(dir_ + "/htpasswd", kHtpasswd);
      cfg += "auth:\n  htpasswd:\n    realm: gray-test\n    path: " + dir_ + "/htpasswd\n";
    }
    write_file(dir_ + "/config.yml", cfg);
    process_ = Process({"docker-registry", "serve", dir_ + "/config.yml"}, dir_ + "/registry.log");
    if (!wait_for_port(port_, 10000))
      throw std::runtime_error("docker-registry did not start: " + read_file(dir_ + "/registry.log"));
  }
  ~Registry() {
    process_.stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  void stop() { process_.stop(); }

 private:
  std::string dir_;
  int port_ = 0;
  Process process_;
};

// Pushes images the way `docker push` does, with the gray HTTP client: blobs by POST (start an
// upload) and PUT (finish it, naming the digest), then the manifest.
class Pusher {
 public:
  Pusher(std::string url, std::string auth = "") : url_(std::move(url)), auth_(std::move(auth)) {}

  std::string blob(const std::string& repo, const std::string& bytes) {
    http::Response started = send("POST", url_ + "/v2/" + repo + "/blobs/uploads/", "", "");
    REQUIRE(started.status == 202);
    std::string location = started.header("location");
    REQUIRE(!location.empty());
    if (location.rfind("http", 0) != 0) location = url_ + location;
    std::string digest = content_digest(bytes);
    http::Response done =
        send("PUT", location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + http::url_encode(digest),
             "application/octet-stream", bytes);
    INFO(done.body);
    REQUIRE(done.status == 201);  // the registry checked our sha256 of the bytes
    return digest;
  }

  // Returns the manifest's digest as the registry computed it.
  std::string manifest(const std::string& repo, const std::string& reference, const std::string& media_type,
                       const std::string& body) {
    http::Response put = send("PUT", url_ + "/v2/" + repo + "/manifests/" + reference, media_type, body);
    INFO(put.body);
    REQUIRE(put.status == 201);
    return put.header("docker-content-digest");
  }

  // A Docker v2 image: a config blob and one layer; `salt` makes each image distinct.
  std::string docker_image(const std::string& repo, const std::string& tag, const std::string& salt = "") {
    std::string config = R"({"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]},"salt":")" +
                         salt + tag + "\"}";
    std::string layer = "gray test layer " + salt + tag;
    std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
                       R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":)" +
                       std::to_string(config.size()) + R"(,"digest":")" + blob(repo, config) +
                       R"("},)"
                       R"("layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":)" +
                       std::to_string(layer.size()) + R"(,"digest":")" + blob(repo, layer) + R"("}]})";
    last_manifest = body;
    return manifest(repo, tag, "application/vnd.docker.distribution.manifest.v2+json", body);
  }

  std::string oci_image(const std::string& repo, const std::string& tag) {
    std::string config = R"({"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"tag":")" + tag + "\"}";
    std::string layer = "oci layer " + tag;
    std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                       R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":)" +
                       std::to_string(config.size()) + R"(,"digest":")" + blob(repo, config) +
                       R"("},)"
                       R"("layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":)" +
                       std::to_string(layer.size()) + R"(,"digest":")" + blob(repo, layer) + R"("}]})";
    last_manifest = body;
    return manifest(repo, tag, "application/vnd.oci.image.manifest.v1+json", body);
  }

  // An OCI index (a multi-platform image) over one manifest already pushed.
  std::string oci_index(const std::string& repo, const std::string& tag, const std::string& manifest_digest,
                        size_t manifest_size) {
    std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
                       R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                       manifest_digest + R"(","size":)" + std::to_string(manifest_size) +
                       R"(,"platform":{"architecture":"arm64","os":"linux"}}]})";
    last_manifest = body;
    return manifest(repo, tag, "application/vnd.oci.image.index.v1+json", body);
  }

  std::string last_manifest;

 private:
  http::Response send(const std::string& method, const std::string& url, const std::string& type, const std::string& body) {
    http::Request r;
    r.method = method;
    r.url = url;
    r.body = body;
    if (!type.empty()) r.headers.push_back({"Content-Type", type});
    if (!auth_.empty()) r.headers.push_back({"Authorization", auth_});
    http::Response resp = client_.send(r);
    INFO(resp.describe(r));
    REQUIRE(resp.transport_ok());
    return resp;
  }

  std::string url_, auth_;
  http::Client client_;
};

Value config(const std::string& url, const std::string& repository, const std::string& user = "",
             const std::string& password = "") {
  Map m{{"url", Value::string(url)}, {"repository", Value::string(repository)}};
  if (!user.empty()) m["username"] = Value::string(user);
  if (!password.empty()) m["password"] = Value::string(password, true);
  return Value::of_map(std::move(m));
}

std::unique_ptr<Driver> driver_for(const std::string& url, const std::string& repository, const std::string& user = "",
                                   const std::string& password = "") {
  return make_docker_registry("images", config(url, repository, user, password), DriverEnv::process("."));
}

Call image_call(const std::string& op, const std::string& ref, double timeout_ms = 5000) {
  Call c;
  c.op = op;
  c.args["ref"] = Value::string(ref);
  c.timeout_ms = timeout_ms;
  return c;
}

bool exists(Driver& d, const std::string& ref) {
  Result r = d.call(image_call("exists", ref));
  INFO(ref << ": " << r.message);
  REQUIRE(r.status == Status::Ok);
  REQUIRE(r.value.kind == Value::Kind::Bool);
  return r.value.flag;
}

std::string digest(Driver& d, const std::string& ref) {
  Result r = d.call(image_call("digest", ref));
  INFO(ref << ": " << r.message);
  REQUIRE(r.status == Status::Ok);
  REQUIRE(r.value.kind == Value::Kind::String);
  return r.value.str;
}

}  // namespace

TEST_CASE("docker_registry: pushed tags exist and report the digest the registry computed", "[docker_registry][real]") {
  Registry registry;
  Pusher push(registry.url());
  std::string v1 = push.docker_image("team/checkout", "2.4.0");
  std::string v1_manifest = push.last_manifest;
  std::string v2 = push.docker_image("team/checkout", "2.4.1");
  std::string oci = push.oci_image("team/checkout", "2.5.0-rc.1");
  std::string oci_manifest = push.last_manifest;
  std::string index = push.oci_index("team/checkout", "2.5.0", oci, oci_manifest.size());
  REQUIRE(v1 == content_digest(v1_manifest));
  REQUIRE(v1 != v2);

  auto d = driver_for(registry.url() + "/", "team/checkout");
  CHECK(exists(*d, "2.4.0"));
  CHECK(exists(*d, "2.4.1"));
  CHECK(exists(*d, "2.5.0-rc.1"));
  CHECK(exists(*d, "2.5.0"));
  CHECK(digest(*d, "2.4.0") == v1);
  CHECK(digest(*d, "2.4.1") == v2);
  CHECK(digest(*d, "2.5.0-rc.1") == oci);
  CHECK(digest(*d, "2.5.0") == index);

  Result r = d->call(image_call("exists", "2.4.1"));
  CHECK(r.elapsed_ms > 0);
}

TEST_CASE("docker_registry: a missing tag does not exist and has no digest", "[docker_registry][real]") {
  Registry registry;
  Pusher push(registry.url());
  push.docker_image("team/checkout", "2.4.0");
  auto d = driver_for(registry.url(), "team/checkout");
  CHECK_FALSE(exists(*d, "9.9.9"));
  Result r = d->call(image_call("digest", "9.9.9"));
  CHECK(r.status == Status::Failed);
  CHECK(r.message == "docker registry at " + registry.url() + ": team/checkout:9.9.9: no such tag");

  // distribution 2.8 answers MANIFEST_UNKNOWN for a repository it never saw, too.
  CHECK_FALSE(exists(*d, "team/nothing-here:1.0"));
  r = d->call(image_call("digest", "team/nothing-here:1.0"));
  CHECK(r.status == Status::Failed);
  CHECK(r.message == "docker registry at " + registry.url() + ": team/nothing-here:1.0: no such tag");

  std::string unknown = "sha256:" + std::string(64, 'a');
  CHECK_FALSE(exists(*d, "team/checkout@" + unknown));
  r = d->call(image_call("digest", unknown));
  CHECK(r.status == Status::Failed);
  CHECK_THAT(r.message, Catch::Contains("no such manifest"));
}

TEST_CASE("docker_registry: the reference forms", "[docker_registry][real]") {
  Registry registry;
  Pusher push(registry.url());
  std::string app = push.docker_image("team/checkout", "2.4.1");
  std::string other = push.docker_image("tools/migrate", "7", "other");
  auto d = driver_for(registry.url(), "team/checkout");

  CHECK(digest(*d, "tools/migrate:7") == other);                       // repo:tag
  CHECK(digest(*d, "team/checkout@" + app) == app);                    // repo@digest
  CHECK(digest(*d, app) == app);                                       // a bare digest, configured repository
  CHECK(digest(*d, "tools/migrate:ignored@" + other) == other);        // tag@digest: the digest decides
  CHECK(digest(*d, registry.host() + "/team/checkout:2.4.1") == app);  // this registry's host may be named
  CHECK(exists(*d, "tools/migrate@" + other));
  CHECK_FALSE(exists(*d, "tools/migrate@" + app));  // that manifest lives in another repository

  for (const char* bad : {"", "team/checkout", "Team/App:1", "app:-x", "app:a b", "app@sha256:abc", "ghcr.io/team/app:1",
                          "localhost:5000/app:1", ":1"}) {
    Result r = d->call(image_call("exists", bad));
    INFO(bad << " -> " << r.message);
    CHECK(r.status == Status::Failed);
    CHECK_THAT(r.message, Catch::Contains("is not an image reference this driver can look up"));
  }
  Result r = d->call(image_call("exists", "ghcr.io/team/app:1"));
  CHECK_THAT(r.message, Catch::Contains("names the registry ghcr.io, but this driver talks to " + registry.host()));
  r = d->call(image_call("exists", "team/checkout"));
  CHECK_THAT(r.message, Catch::Contains("no tag; write team/checkout:TAG"));
  Call no_ref;
  no_ref.op = "exists";
  CHECK(d->call(no_ref).status == Status::Failed);
  CHECK(d->call(image_call("delete", "2.4.1")).status == Status::Failed);
}

TEST_CASE("docker_registry: basic auth with username and password", "[docker_registry][real]") {
  Registry registry(/*basic_auth=*/true);
  Pusher push(registry.url(), "Basic " + http::base64_encode(kUser + ":" + kPassword));
  std::string app = push.docker_image("team/checkout", "2.4.1");

  auto d = driver_for(registry.url(), "team/checkout", kUser, kPassword);
  CHECK(exists(*d, "2.4.1"));
  CHECK(digest(*d, "2.4.1") == app);
  CHECK_FALSE(exists(*d, "2.4.2"));

  auto anonymous = driver_for(registry.url(), "team/checkout");
  Result r = anonymous->call(image_call("exists", "2.4.1"));
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("asks for a user name and password"));

  auto wrong = driver_for(registry.url(), "team/checkout", kUser, "not-the-password-31");
  r = wrong->call(image_call("digest", "2.4.1"));
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("refused the password of user 'gray'"));
  CHECK(r.message.find("not-the-password-31") == std::string::npos);
}

TEST_CASE("docker_registry: a registry that is down is an error", "[docker_registry][real]") {
  Registry registry;
  Pusher push(registry.url());
  push.docker_image("team/checkout", "2.4.1");
  auto d = driver_for(registry.url(), "team/checkout");
  CHECK(exists(*d, "2.4.1"));
  registry.stop();
  auto t0 = std::chrono::steady_clock::now();
  Result r = d->call(image_call("exists", "2.4.1", 3000));
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::StartsWith("docker registry at " + registry.url() + ": team/checkout:2.4.1: HEAD " +
                                          registry.url() + "/v2/team/checkout/manifests/2.4.1: "));
  CHECK(ms_since(t0) < 3000);
  CHECK(d->call(image_call("digest", "2.4.1")).status == Status::Error);
}

TEST_CASE("docker_registry: bearer tokens from the challenge's realm", "[docker_registry][fake]") {
  std::string token = "registry-token-5d1e";
  const std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
  int token_requests = 0;
  std::string realm;
  HttpServer fake([&](const HttpRequest& req) {
    HttpReply r;
    if (req.path == "/token") {
      ++token_requests;
      if (req.header("authorization") != "Basic " + http::base64_encode(kUser + ":" + kPassword)) {
        r.status = 401;
        return r;
      }
      r.body = "{\"access_token\":\"" + token + "\",\"expires_in\":300,\"scope\":\"" + req.query.at("scope") +
               "\",\"service\":\"" + req.query.at("service") + "\"}";
      return r;
    }
    if (req.header("authorization") != "Bearer " + token) {
      r.status = 401;
      r.headers.push_back(
          {"WWW-Authenticate", "Bearer realm=\"" + realm + "\",service=\"fake-registry\",scope=\"repository:team/app:pull\""});
      r.body = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";
      return r;
    }
    if (req.header("accept").find("application/vnd.oci.image.manifest.v1+json") == std::string::npos) {
      r.status = 400;
      return r;
    }
    if (req.path == "/v2/team/app/manifests/1.0") {
      // No Docker-Content-Digest: the driver hashes the manifest itself.
      r.content_type = "application/vnd.oci.image.manifest.v1+json";
      r.body = manifest;
      return r;
    }
    r.status = 404;
    r.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
    return r;
  });
  realm = fake.url() + "/token";

  auto d = driver_for(fake.url(), "team/app", kUser, kPassword);
  CHECK(exists(*d, "1.0"));
  CHECK(digest(*d, "1.0") == content_digest(manifest));
  CHECK_FALSE(exists(*d, "2.0"));
  CHECK(token_requests == 1);  // the token is kept for its lifetime
  auto seen = fake.requests();
  REQUIRE(seen.size() >= 3);
  CHECK(seen[1].path == "/token");
  CHECK(seen[1].query.at("scope") == "repository:team/app:pull");
  CHECK(seen[1].query.at("service") == "fake-registry");

  // The registry forgets the token (restarted, revoked): one new token, and the call succeeds.
  token = "registry-token-second";
  CHECK(exists(*d, "1.0"));
  CHECK(token_requests == 2);

  auto wrong = driver_for(fake.url(), "team/app", kUser, "bad-password-92");
  Result r = wrong->call(image_call("exists", "1.0"));
  CHECK(r.status == Status::Error);
  CHECK_THAT(r.message, Catch::Contains("the token service refused: HTTP 401"));
  CHECK(r.message.find("bad-password-92") == std::string::npos);
}

TEST_CASE("docker_registry: refusals and slowness", "[docker_registry][fake]") {
  int status = 200, delay = 0;
  HttpServer fake([&](const HttpRequest&) {
    HttpReply r;
    r.status = status;
    r.delay_ms = delay;
    if (status == 403) r.body = R"({"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]})";
    if (status == 404) r.body = R"({"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]})";
    if (status == 200) r.headers.push_back({"Docker-Content-Digest", "sha256:" + std::string(64, '1')});
    return r;
  });
  auto d = driver_for(fake.url(), "team/app");

  SECTION("403 is an error with the registry's reason") {
    status = 403;
    Result r = d->call(image_call("exists", "1.0"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("HTTP 403 DENIED: requested access to the resource is denied"));
  }
  SECTION("a repository the registry does not know (NAME_UNKNOWN, as Docker Hub answers)") {
    status = 404;
    CHECK_FALSE(exists(*d, "1.0"));
    Result r = d->call(image_call("digest", "1.0"));
    CHECK(r.status == Status::Failed);
    CHECK(r.message ==
          "docker registry at " + fake.url() + ": team/app:1.0: no such tag: the repository team/app does not exist");
  }
  SECTION("503 is an error, after one retry") {
    status = 503;
    Result r = d->call(image_call("exists", "1.0"));
    CHECK(r.status == Status::Error);
    CHECK_THAT(r.message, Catch::Contains("HTTP 503"));
    CHECK(fake.requests().size() == 2);  // HEAD, and one retry
  }
  SECTION("a slow registry times out within the call's timeout") {
    delay = 1500;
    auto t0 = std::chrono::steady_clock::now();
    Result r = d->call(image_call("exists", "1.0", 400));
    CHECK(r.status == Status::Error);
    CHECK(ms_since(t0) < 1000);
  }
  SECTION("the header's digest") { CHECK(digest(*d, "1.0") == "sha256:" + std::string(64, '1')); }
}

TEST_CASE("docker_registry: a bad configuration is refused", "[docker_registry]") {
  auto env = DriverEnv::process(".");
  CHECK_THROWS_WITH(make_docker_registry("images", Value::of_map({}), env), Catch::Contains("images: field 'url' is required"));
  CHECK_THROWS_WITH(make_docker_registry("images", config("http://r", ""), env), Catch::Contains("'repository'"));
  CHECK_THROWS_WITH(make_docker_registry("images", config("http://r", "Team/App"), env),
                    Catch::Contains("not a repository name"));
  CHECK_THROWS_WITH(make_docker_registry("images", config("http://r/v2/", "app"), env), Catch::Contains("without /v2"));
  CHECK_THROWS_WITH(make_docker_registry("images", config("http://r", "app", "user"), env), Catch::Contains("go together"));
  CHECK_THROWS_WITH(make_docker_registry("images", config("r:5000", "app"), env), Catch::Contains("http://"));
}

TEST_CASE("docker_registry: sha256 test vectors", "[docker_registry]") {
  using docker_registry::sha256_hex;
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("docker_registry: blobs of every length around a block boundary hash as the registry expects",
          "[docker_registry][real]") {
  Registry registry;
  Pusher push(registry.url());
  for (size_t n : {0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000})
    push.blob("team/hashes", std::string(n, static_cast<char>('a' + n % 26)));  // the PUT fails on a wrong digest
}

TEST_CASE("docker_registry: image references", "[docker_registry]") {
  using docker_registry::ImageRef;
  using docker_registry::parse_image_ref;
  ImageRef ref;
  std::string error;
  const std::string digest = "sha256:" + std::string(64, 'f');
  REQUIRE(parse_image_ref("2.4.1", "team/app", "reg:5000", ref, error));
  CHECK(ref.shown() == "team/app:2.4.1");
  REQUIRE(parse_image_ref("other/x:latest", "team/app", "reg:5000", ref, error));
  CHECK(ref.shown() == "other/x:latest");
  REQUIRE(parse_image_ref("reg:5000/other/x:1", "team/app", "reg:5000", ref, error));
  CHECK(ref.shown() == "other/x:1");
  REQUIRE(parse_image_ref("docker.io/library/nginx:1.25", "app", "registry-1.docker.io", ref, error));
  CHECK(ref.shown() == "library/nginx:1.25");
  REQUIRE(parse_image_ref("x@" + digest, "team/app", "reg", ref, error));
  CHECK(ref.reference() == digest);
  CHECK(ref.repository == "x");
  REQUIRE(parse_image_ref(digest, "team/app", "reg", ref, error));
  CHECK(ref.shown() == "team/app@" + digest);
  CHECK(docker_registry::valid_repository("a__b/c-----d/e.f_g"));
  CHECK_FALSE(docker_registry::valid_repository("a___b"));
  CHECK_FALSE(docker_registry::valid_repository("a//b"));
  CHECK_FALSE(docker_registry::valid_repository("a-"));
  CHECK(docker_registry::valid_tag("V1_2.3-rc"));
  CHECK_FALSE(docker_registry::valid_tag(".x"));
  CHECK_FALSE(docker_registry::valid_tag(std::string(129, 'a')));
  CHECK(docker_registry::url_authority("https://user:pw@Reg.Example:5000/prefix") == "reg.example:5000");
}

TEST_CASE("docker_registry: check latency against the real registry", "[docker_registry][real][figures]") {
  Registry registry;
  Pusher push(registry.url());
  push.docker_image("team/checkout", "2.4.1");
  auto d = driver_for(registry.url(), "team/checkout");
  auto measure = [&](const std::string& tag, bool expected) {
    std::vector<double> took;
    for (int i = 0; i < 50; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      bool found = exists(*d, tag);
      took.push_back(ms_since(t0));
      REQUIRE(found == expected);
    }
    std::sort(took.begin(), took.end());
    std::cout << "docker registry exists check latency over 50 checks of a " << (expected ? "present" : "missing")
              << " tag: median " << took[25] << " ms, p90 " << took[45] << " ms, max " << took.back() << " ms\n";
    return took[25];
  };
  CHECK(measure("2.4.1", true) < 200);
  CHECK(measure("missing", false) < 200);
}
