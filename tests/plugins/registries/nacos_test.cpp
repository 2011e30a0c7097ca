// The Nacos registry driver against a fake that follows the documented open API (no Nacos server
// can be installed here): tests/plugins/registries/nacos_fake.h.
#include "plugins/nacos/nacos.h"

#include <catch2/catch.hpp>
#include <iostream>

#include "tests/plugins/registries/nacos_fake.h"
#include "tests/plugins/registries/support.h"

using namespace gray;
using namespace gray::regtest;
using plugins::Result;

namespace {

Value nacos_config(const NacosFake& fake, std::map<std::string, Value> extra = {}) {
  extra["server"] = str(fake.url());
  if (!extra.count("service")) extra["service"] = str("checkout");
  return map(std::move(extra));
}

std::unique_ptr<plugins::Driver> make(const Value& config, std::vector<std::string>* notes = nullptr) {
  return plugins::make_nacos("names", config, test_env(notes));
}

bool registered(plugins::Driver& d, const std::string& name) {
  Result r = d.call(call("registered", {{"instance", str(name)}}));
  REQUIRE(r.status == Result::Status::Ok);
  return r.value.flag;
}

NacosFake::Instance node(const std::string& ip, int port, std::map<std::string, std::string> md = {}) {
  NacosFake::Instance in;
  in.ip = ip;
  in.port = port;
  in.metadata = std::move(md);
  return in;
}

const std::string kService = "DEFAULT_GROUP@@checkout";

}  // namespace

TEST_CASE("nacos v1: register, list, deregister, register back", "[nacos]") {
  NacosFake fake({});
  auto d = make(nacos_config(fake, {{"namespace", str("prod")}}));
  Result r = d->call(
      call("register", with(host("app-1", "10.0.0.5", 8080, {{"version", str("1.0")}}), "metadata", map({{"zone", str("a")}}))));
  REQUIRE(r.status == Result::Status::Ok);
  CHECK(r.undo->op == "deregister");
  auto in = fake.get("prod", kService, "10.0.0.5", 8080);
  REQUIRE(in);
  CHECK(in->metadata["version"] == "1.0");
  CHECK(in->metadata["zone"] == "a");
  CHECK(in->enabled);
  CHECK(registered(*d, "app-1"));
  CHECK(registered(*d, "10.0.0.5:8080"));
  CHECK(d->call(call("count", {{"version", str("1.0")}})).value.num == 1);
  CHECK(d->call(call("count", {{"version", str("2.0")}})).value.num == 0);

  // v1 sends its parameters in the query string; the register was a POST with metadata as JSON.
  auto reqs = fake.requests();
  auto post = std::find_if(reqs.begin(), reqs.end(), [](const auto& q) { return q.method == "POST"; });
  REQUIRE(post != reqs.end());
  CHECK(post->query.at("namespaceId") == "prod");
  CHECK(post->query.at("serviceName") == "checkout");
  CHECK(post->query.at("metadata").find("\"zone\":\"a\"") != std::string::npos);

  r = d->call(call("deregister", {{"instance", str("app-1")}}));
  REQUIRE(r.ok());
  CHECK_FALSE(fake.get("prod", kService, "10.0.0.5", 8080));
  REQUIRE(r.undo);
  CHECK(r.undo->op == "register");
  CHECK(d->call(call("deregister", {{"instance", str("app-1")}})).replayed);

  // By name alone it comes back as it was (this driver remembers it; the undo call carries it all).
  REQUIRE(d->call(call("register", {{"instance", str("app-1")}})).ok());
  in = fake.get("prod", kService, "10.0.0.5", 8080);
  REQUIRE(in);
  CHECK(in->metadata["zone"] == "a");
  CHECK(d->call(call("register", {{"instance", str("app-1")}})).replayed);

  // After a restart, the journaled undo call alone is enough.
  plugins::Call undo = *d->undo_for(call("deregister", {{"instance", str("app-1")}}));
  REQUIRE(d->call(call("deregister", {{"instance", str("app-1")}})).ok());
  d = make(nacos_config(fake, {{"namespace", str("prod")}}));
  undo.timeout_ms = 5000;
  REQUIRE(d->call(undo).ok());
  CHECK(fake.get("prod", kService, "10.0.0.5", 8080)->metadata["zone"] == "a");

  r = d->call(call("register", {{"instance", str("stranger")}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("address is unknown") != std::string::npos);
}

TEST_CASE("nacos: disable drains (left out of the list), enable, set_weight and tag keep the rest", "[nacos]") {
  NacosFake fake({});
  fake.put("public", kService, node("10.0.0.6", 8080, {{"version", "1.0"}, {"owner", "team-a"}}));
  auto d = make(nacos_config(fake));
  auto app = host("app-2", "10.0.0.6", 8080);

  REQUIRE(d->call(call("set_weight", with(app, "weight", Value::number(3)))).ok());
  auto in = fake.get("public", kService, "10.0.0.6", 8080);
  CHECK(in->weight == 3);
  CHECK(in->metadata["owner"] == "team-a");  // an update replaces metadata: the driver sends it whole

  Result r = d->call(call("disable", app));
  REQUIRE(r.ok());
  CHECK(r.undo->op == "enable");
  in = fake.get("public", kService, "10.0.0.6", 8080);
  CHECK_FALSE(in->enabled);
  CHECK(in->weight == 3);
  CHECK_FALSE(registered(*d, "app-2"));
  CHECK(d->call(call("disable", app)).replayed);  // found by the detail query, already disabled

  // A new driver (gray restarted) finds the disabled instance through the detail query.
  d = make(nacos_config(fake));
  REQUIRE(d->call(call("enable", app)).ok());
  in = fake.get("public", kService, "10.0.0.6", 8080);
  CHECK(in->enabled);
  CHECK(in->weight == 3);
  CHECK(in->metadata["owner"] == "team-a");
  CHECK(d->call(call("enable", app)).replayed);

  r = d->call(call("tag", with(app, "metadata", map({{"version", str("2.0")}, {"owner", Value::null()}}))));
  REQUIRE(r.ok());
  in = fake.get("public", kService, "10.0.0.6", 8080);
  CHECK(in->metadata["version"] == "2.0");
  CHECK_FALSE(in->metadata.count("owner"));
  CHECK(in->weight == 3);
  // Its undo puts back exactly what it changed.
  r.undo->timeout_ms = 5000;
  REQUIRE(d->call(*r.undo).ok());
  in = fake.get("public", kService, "10.0.0.6", 8080);
  CHECK(in->metadata["version"] == "1.0");
  CHECK(in->metadata["owner"] == "team-a");

  CHECK(d->call(call("set_weight", with(app, "weight", Value::number(20000)))).status == Result::Status::Failed);
  // An instance its own client registered over gRPC: the HTTP deregistration cannot remove it.
  NacosFake::Instance grpc = node("10.0.0.16", 8080, {{"version", "1.0"}});
  grpc.grpc = true;
  fake.put("public", kService, grpc);
  r = d->call(call("deregister", host("app-16", "10.0.0.16", 8080)));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("drain it with disable") != std::string::npos);
  REQUIRE(d->call(call("disable", host("app-16", "10.0.0.16", 8080))).ok());
  CHECK_FALSE(fake.get("public", kService, "10.0.0.16", 8080)->enabled);

  r = d->call(call("tag", with(host("ghost", "10.9.9.9", 1), "metadata", map({{"a", str("b")}}))));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("ghost is not registered") != std::string::npos);
}

TEST_CASE("nacos groups and service names: group@@service, groupName, conflicts", "[nacos]") {
  NacosFake fake({});
  auto grouped = make(nacos_config(fake, {{"service", str("PAY@@checkout")}}));
  REQUIRE(grouped->call(call("register", host("g-1", "10.0.1.1", 80))).ok());
  CHECK(fake.get("public", "PAY@@checkout", "10.0.1.1", 80));
  auto by_group = make(nacos_config(fake, {{"group", str("PAY")}}));
  CHECK(by_group->call(call("registered", host("g-1", "10.0.1.1", 80))).value.flag);
  auto other_group = make(nacos_config(fake));
  CHECK_FALSE(other_group->call(call("registered", host("g-1", "10.0.1.1", 80))).value.flag);
  CHECK_THROWS_AS(make(nacos_config(fake, {{"service", str("PAY@@checkout")}, {"group", str("OTHER")}})), plugins::DriverError);
  CHECK_THROWS_AS(make(nacos_config(fake, {{"service", str("@@checkout")}})), plugins::DriverError);
  CHECK_THROWS_AS(make(nacos_config(fake, {{"api", str("v3")}})), plugins::DriverError);
}

TEST_CASE("nacos v2: form bodies and {code,message,data} envelopes, data \"ok\" or true", "[nacos]") {
  for (bool data_true : {false, true}) {
    NacosFake::Options o;
    o.data_true = data_true;
    NacosFake fake(o);
    auto d = make(nacos_config(fake, {{"api", str("v2")}}));
    REQUIRE(d->call(call("register", with(host("v2-1", "10.0.2.1", 80), "metadata", map({{"version", str("1")}})))).ok());
    auto reqs = fake.requests();
    auto post = std::find_if(reqs.begin(), reqs.end(), [](const auto& q) { return q.method == "POST"; });
    REQUIRE(post != reqs.end());
    CHECK(post->path == "/nacos/v2/ns/instance");
    CHECK(post->header("content-type") == "application/x-www-form-urlencoded");
    CHECK(post->body.find("serviceName=checkout") != std::string::npos);
    CHECK(registered(*d, "v2-1"));
    REQUIRE(d->call(call("disable", {{"instance", str("v2-1")}})).ok());
    CHECK_FALSE(fake.get("public", kService, "10.0.2.1", 80)->enabled);
    REQUIRE(d->call(call("enable", {{"instance", str("v2-1")}})).ok());
    REQUIRE(d->call(call("deregister", {{"instance", str("v2-1")}})).ok());
    CHECK_FALSE(registered(*d, "v2-1"));
  }
  NacosFake fake({});
  fake.put("public", kService, node("10.0.2.2", 80));
  auto d = make(nacos_config(fake, {{"api", str("v2")}}));
  fake.fail_next(400, R"({"code":21002,"message":"instance metadata error","data":"metadata format incorrect:x"})");
  Result r = d->call(call("tag", with(host("v2-2", "10.0.2.2", 80), "metadata", map({{"a", str("b")}}))));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("code 21002") != std::string::npos);
}

TEST_CASE("nacos login: token as accessToken, renewed before it runs out and once after a 403, never shown", "[nacos]") {
  NacosFake::Options o;
  o.auth = true;
  o.token_ttl_s = 2;
  NacosFake fake(o);
  auto config = [&](const std::string& pw) {
    return nacos_config(fake, {{"username", str("nacos")}, {"password", Value::string(pw, true)}});
  };
  auto d = make(config("nacos-secret-pw"));
  REQUIRE(d->call(call("register", host("a-1", "10.0.3.1", 80))).ok());
  CHECK(fake.logins() == 1);
  auto reqs = fake.requests();
  CHECK(reqs.back().query.count("accessToken") == 1);

  // Let the keeper's first heartbeat (and its own login) pass; the next one is 5 s away.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  // The server forgot its tokens (restart): one 403, one new login, the call goes through.
  fake.revoke_tokens();
  int logins = fake.logins(), denials = fake.denials();
  CHECK(registered(*d, "a-1"));
  CHECK(fake.logins() == logins + 1);
  CHECK(fake.denials() == denials + 1);

  // 90% of a 2 s token life later, the driver logs in again before calling: no 403 at all.
  std::this_thread::sleep_for(std::chrono::milliseconds(1900));
  logins = fake.logins();
  denials = fake.denials();
  CHECK(registered(*d, "a-1"));
  CHECK(fake.logins() == logins + 1);
  CHECK(fake.denials() == denials);

  auto wrong = make(config("wrong-pw-123"));
  Result r = wrong->call(call("count"));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("login as nacos refused") != std::string::npos);
  CHECK(r.message.find("wrong-pw-123") == std::string::npos);

  auto anonymous = make(nacos_config(fake));
  r = anonymous->call(call("count"));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("set username and password") != std::string::npos);
}

TEST_CASE("nacos 3: 410 Gone on admin endpoints is explained", "[nacos]") {
  NacosFake::Options o;
  o.nacos3 = true;
  NacosFake fake(o);
  auto d = make(nacos_config(fake));
  // register, deregister and list stay open in Nacos 3.
  REQUIRE(d->call(call("register", host("n3-1", "10.0.4.1", 80))).ok());
  CHECK(registered(*d, "n3-1"));
  Result r = d->call(call("disable", {{"instance", str("n3-1")}}));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("410") != std::string::npos);
  CHECK(r.message.find("nacos.core.api.compatibility.admin.enabled=true") != std::string::npos);
  REQUIRE(d->call(call("deregister", {{"instance", str("n3-1")}})).ok());

  auto v2 = make(nacos_config(fake, {{"api", str("v2")}}));
  r = v2->call(call("register", host("n3-2", "10.0.4.2", 80)));
  CHECK(r.status == Result::Status::Failed);
  CHECK(r.message.find("Nacos 3") != std::string::npos);
}

TEST_CASE("nacos heartbeats keep gray's registrations alive while the driver lives", "[nacos]") {
  NacosFake::Options o;
  o.beat_interval_ms = 200;
  o.expire_ms = 1000;
  NacosFake fake(o);
  auto d = make(nacos_config(fake));
  REQUIRE(d->call(call("register", host("hb-1", "10.0.5.1", 80))).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK(fake.get("public", kService, "10.0.5.1", 80));
  d.reset();
  CHECK(wait_until([&] { return !fake.get("public", kService, "10.0.5.1", 80); }, 3000) >= 0);
}

TEST_CASE("nacos pause: a re-registration while paused is held out (disabled) until resume", "[nacos]") {
  NacosFake fake({});
  fake.put("public", kService, node("10.0.6.1", 80, {{"version", "1"}}));
  std::vector<std::string> notes;
  auto d = make(nacos_config(fake), &notes);
  auto app = host("p-1", "10.0.6.1", 80);
  REQUIRE(d->call(call("deregister", app)).ok());
  Result r = d->call(call("pause_registration", app));
  REQUIRE(r.ok());
  CHECK(r.undo->op == "resume_registration");
  CHECK(d->call(call("pause_registration", app)).replayed);

  // The node's own client registers it again (new version).
  fake.put("public", kService, node("10.0.6.1", 80, {{"version", "2"}}));
  double held = wait_until(
      [&] {
        auto in = fake.get("public", kService, "10.0.6.1", 80);
        return in && !in->enabled;
      },
      3000);
  CHECK(held >= 0);
  CHECK_FALSE(registered(*d, "p-1"));
  CHECK(notes.size() == 1);

  double t0 = now_ms();
  REQUIRE(d->call(call("resume_registration", app)).ok());
  CHECK(fake.get("public", kService, "10.0.6.1", 80)->enabled);
  CHECK(fake.get("public", kService, "10.0.6.1", 80)->metadata["version"] == "2");
  std::cerr << "figure: nacos re-registration held out after " << held << " ms; resume let it back in within " << now_ms() - t0
            << " ms\n";
  CHECK(d->call(call("resume_registration", app)).replayed);

  // A pause alone leaves a registered instance alone.
  REQUIRE(d->call(call("pause_registration", app)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(fake.get("public", kService, "10.0.6.1", 80)->enabled);
}

TEST_CASE("nacos weight: instance weights give the canary its share; undo restores them", "[nacos]") {
  NacosFake fake({});
  for (int i = 1; i <= 3; ++i) fake.put("public", kService, node("10.0.7." + std::to_string(i), 80, {{"version", "1"}}));
  fake.put("public", kService, node("10.0.7.9", 80, {{"version", "2"}}));
  auto d = make(nacos_config(fake, {{"canary", list({"10.0.7.9:80"})}}));
  plugins::Call w = call("weight", {{"canary", Value::percent(10)}});
  auto undo = d->undo_for(w);
  REQUIRE(d->call(w).ok());
  double c = fake.get("public", kService, "10.0.7.9", 80)->weight, s = fake.get("public", kService, "10.0.7.1", 80)->weight;
  CHECK(c / (c + 3 * s) == Approx(0.10));
  CHECK(d->call(w).replayed);
  REQUIRE(d->call(call("weight", {{"canary", Value::percent(0)}})).ok());
  CHECK(fake.get("public", kService, "10.0.7.9", 80)->weight == 0);
  REQUIRE(undo);
  CHECK(undo->args.at("canary").num == Approx(25));  // four instances of weight 1
  undo->timeout_ms = 5000;
  REQUIRE(d->call(*undo).ok());
  for (const char* ip : {"10.0.7.1", "10.0.7.2", "10.0.7.3", "10.0.7.9"})
    CHECK(fake.get("public", kService, ip, 80)->weight == 1);
  CHECK(make(nacos_config(fake))->call(w).status == Result::Status::Failed);
}

TEST_CASE("nacos undo_for and bad answers", "[nacos]") {
  NacosFake fake({});
  fake.put("public", kService, node("10.0.8.1", 80, {{"version", "1"}}));
  auto d = make(nacos_config(fake));
  auto app = host("u-1", "10.0.8.1", 80);
  auto check_round_trip = [&](plugins::Call effect) {
    auto before = fake.get("public", kService, "10.0.8.1", 80);
    auto undo = d->undo_for(effect);
    REQUIRE(undo);
    REQUIRE(d->call(effect).ok());
    undo->timeout_ms = 5000;
    REQUIRE(d->call(*undo).ok());
    auto after = fake.get("public", kService, "10.0.8.1", 80);
    REQUIRE(after);
    CHECK(after->metadata == before->metadata);
    CHECK(after->weight == before->weight);
    CHECK(after->enabled == before->enabled);
  };
  check_round_trip(call("tag", with(app, "metadata", map({{"version", str("2")}}))));
  check_round_trip(call("set_weight", with(app, "weight", Value::number(7))));
  check_round_trip(call("disable", app));
  check_round_trip(call("deregister", app));
  CHECK_FALSE(d->undo_for(call("enable", app)));

  testing::HttpServer junk([](const testing::HttpRequest&) {
    testing::HttpReply r;
    r.body = "<html>maintenance</html>";
    r.content_type = "text/html";
    return r;
  });
  auto bad = make(map({{"server", str(junk.url())}, {"service", str("x")}}));
  Result r = bad->call(call("count"));
  CHECK(r.status == Result::Status::Error);
  CHECK(r.message.find("not Nacos JSON") != std::string::npos);
  r = bad->call(call("register", host("x-1", "10.0.0.1", 80)));
  CHECK(r.status == Result::Status::Error);

  auto down = make(map({{"server", str("http://127.0.0.1:" + std::to_string(testing::free_port()))}, {"service", str("x")}}));
  r = down->call(call("count"));
  CHECK(r.status == Result::Status::Error);
  CHECK(r.message.find("cannot reach") != std::string::npos);
}
