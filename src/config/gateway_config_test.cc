#include "config/gateway_config.h"

#include <cstdio>

#include <boost/json.hpp>

#include "common/strings.h"
#include "config/json_reader.h"
#include "gtest/gtest.h"
#include "testing/test_paths.h"

namespace abgate::config {
namespace {

constexpr char kMinimal[] = R"(
experiments:
  - name: exp
    arms:
      - {name: A, weight: 80, upstream: http://127.0.0.1:9007/invocations}
      - {name: B, weight: 20, upstream: http://127.0.0.1:9008/invocations}
)";

std::string ErrorOf(std::string_view yaml) {
  auto c = ParseGatewayConfig(yaml);
  return c.ok() ? "OK" : std::string(c.status().message());
}

TEST(GatewayConfigTest, ParsesTheExampleConfig) {
  auto c = LoadGatewayConfig(std::string(ABGATE_SOURCE_DIR) + "/examples/hyatt.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.listen.port, 8080);
  EXPECT_EQ(c->server.admin_listen.port, 8081);
  EXPECT_EQ(c->events.flush_us, 50'000);
  ASSERT_EQ(c->experiments.size(), 1u);
  const auto& e = c->experiments[0];
  EXPECT_EQ(e.name, "hyatt_booking_ab");
  EXPECT_TRUE(e.is_default);
  EXPECT_EQ(e.routing_mode, RoutingMode::kUserHash);
  EXPECT_EQ(e.unit_field, "user_id");
  EXPECT_EQ(e.unit_header, "X-User-Id");
  ASSERT_EQ(e.arms.size(), 2u);
  EXPECT_EQ(e.arms[1].version, "8");
  EXPECT_DOUBLE_EQ(e.arms[0].weight, 80);
  EXPECT_EQ(e.ControlIndex(), 0);
  ASSERT_EQ(e.metrics.size(), 2u);
  EXPECT_TRUE(e.metrics[0].primary);
  EXPECT_DOUBLE_EQ(e.guardrails.max_p99_latency_ms, 250);
  EXPECT_EQ(c->DefaultExperiment(), &c->experiments[0]);
}

TEST(GatewayConfigTest, AppliesDefaults) {
  auto c = ParseGatewayConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& e = c->experiments[0];
  EXPECT_EQ(e.seed, "exp");
  EXPECT_EQ(e.control, "A");
  EXPECT_EQ(e.routing_mode, RoutingMode::kUserHash);
  EXPECT_TRUE(e.fallback_to_control);
  EXPECT_EQ(c->server.threads, 2);
}

TEST(GatewayConfigTest, UnquotedAndQuotedVersionsAreStrings) {
  auto c = ParseGatewayConfig(R"(
experiments:
  - name: e
    arms:
      - {name: A, version: 7, weight: 1, upstream: http://h:1/invocations}
      - {name: B, version: "08", weight: 1, upstream: http://h:2/invocations}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->experiments[0].arms[0].version, "7");
  EXPECT_EQ(c->experiments[0].arms[1].version, "08");
}

TEST(GatewayConfigTest, RejectsUnknownKeysWithTheirPath) {
  EXPECT_EQ(ErrorOf("server: {listn: '127.0.0.1:1'}\nexperiments: []"), "server.listn: unknown key");
  EXPECT_EQ(ErrorOf(R"(
experiments:
  - name: e
    arms: [{name: A, weight: 1, upstream: http://h:1/x, wieght: 2}]
)"),
            "experiments[0].arms[0].wieght: unknown key");
}

TEST(GatewayConfigTest, RejectsInvalidExperiments) {
  EXPECT_NE(ErrorOf(R"(
experiments:
  - name: e
    routing_mode: sometimes
    arms: [{name: A, weight: 1, upstream: http://h:1/x}]
)").find("unknown routing_mode 'sometimes'"), std::string::npos);
  EXPECT_NE(ErrorOf(R"(
experiments:
  - name: e
    control: Z
    arms: [{name: A, weight: 1, upstream: http://h:1/x}]
)").find("control 'Z' is not one of the arms"), std::string::npos);
  EXPECT_NE(ErrorOf(R"(
experiments:
  - name: e
    arms: [{name: A, weight: 1, upstream: http://h:1/x}, {name: A, weight: 1, upstream: http://h:1/x}]
)").find("used twice"), std::string::npos);
  EXPECT_NE(ErrorOf(R"(
experiments:
  - name: e
    arms: [{name: A, weight: 1, upstream: ftp://h:1/x}]
)").find("must be http:// or https://"), std::string::npos);
  EXPECT_NE(ErrorOf(R"(
experiments:
  - name: e
    arms: [{name: A, upstream: http://h:1/x}]
)").find("weight: is required"), std::string::npos);
  EXPECT_NE(ErrorOf(R"(
experiments:
  - name: e
    arms: [{name: A, weight: 1, upstream: http://h:1/x}]
    ramp: [{after: 5 parsecs, weights: [1]}]
)").find("bad duration"), std::string::npos);
  EXPECT_NE(ErrorOf("experiments: [{name: 'a b', arms: [{name: A, weight: 1, upstream: 'http://h:1/x'}]}]")
                .find("name must be"), std::string::npos);
}

TEST(GatewayConfigTest, RejectsTwoDefaults) {
  EXPECT_NE(ErrorOf(R"(
experiments:
  - {name: a, default: true, arms: [{name: A, weight: 1, upstream: 'http://h:1/x'}]}
  - {name: b, default: true, arms: [{name: A, weight: 1, upstream: 'http://h:1/x'}]}
)").find("at most one"), std::string::npos);
}

constexpr char kTwoInOneNamespace[] = R"(
experiments:
  - name: a
    namespace: {name: ranking, range: [0, 0.5]}
    arms: [{name: A, weight: 1, upstream: http://127.0.0.1:9007/invocations}]
  - name: b
    namespace: {name: ranking, range: [%s]}
    %s
    arms: [{name: A, weight: 1, upstream: http://127.0.0.1:9007/invocations}]
)";

std::string TwoInOneNamespace(const std::string& range, const std::string& extra = "") {
  char buf[1024];
  std::snprintf(buf, sizeof buf, kTwoInOneNamespace, range.c_str(), extra.c_str());
  return buf;
}

TEST(GatewayConfigTest, NamespacesMustNotOverlapAmongRunningExperiments) {
  auto c = ParseGatewayConfig(TwoInOneNamespace("0.5, 1"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->experiments[1].namespace_range.has_value());
  EXPECT_EQ(c->experiments[1].namespace_range->name, "ranking");
  EXPECT_DOUBLE_EQ(c->experiments[1].namespace_range->low, 0.5);
  EXPECT_EQ(ErrorOf(TwoInOneNamespace("0.4, 1")),
            "experiments: namespace 'ranking': experiment b's range [0.4, 1) overlaps experiment a's [0, 0.5); "
            "running experiments in one namespace must have disjoint ranges");
  EXPECT_EQ(ErrorOf(TwoInOneNamespace("0.4, 1", "state: stopped")), "OK");  // a stopped one holds no range
  EXPECT_NE(ErrorOf(TwoInOneNamespace("0.6, 0.6")).find("0 <= low < high <= 1"), std::string::npos);
  EXPECT_NE(ErrorOf(TwoInOneNamespace("0.5, 1.5")).find("experiments[1].namespace.range"), std::string::npos);
  // Round trip through the admin API's JSON.
  const auto json = ExperimentToJson(c->experiments[1]);
  auto back = ParseExperimentConfig(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_DOUBLE_EQ(back->namespace_range->high, 1.0);
}

TEST(GatewayConfigTest, ParsesTheHoldout) {
  auto c = ParseGatewayConfig(std::string("holdout: {percent: 5}\n") + kMinimal);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->holdout.percent, 5);
  EXPECT_EQ(c->holdout.seed, "abgate-holdout");
  EXPECT_DOUBLE_EQ(ParseGatewayConfig(kMinimal)->holdout.percent, 0);
  EXPECT_NE(ErrorOf(std::string("holdout: {percent: 100}\n") + kMinimal).find("holdout.percent"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string("holdout: {percent: 5, size: 1}\n") + kMinimal).find("size"), std::string::npos);
}

TEST(GatewayConfigTest, AMetricMayNameACupedCovariate) {
  const std::string yaml = std::string(kMinimal) +
                           "    metrics:\n"
                           "      - {name: revenue, type: continuous, primary: true, cuped: {covariate: pre_revenue}}\n"
                           "      - {name: booked}\n";
  auto c = ParseGatewayConfig(yaml);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->experiments[0].metrics[0].cuped_covariate, "pre_revenue");
  EXPECT_EQ(c->experiments[0].metrics[1].cuped_covariate, "");
  const auto j = ExperimentToJson(c->experiments[0]);
  EXPECT_EQ(j.at("metrics").at(0).at("cuped").at("covariate"), "pre_revenue");
  auto back = ParseExperimentConfig(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->metrics[0].cuped_covariate, "pre_revenue");
  auto with = [&](const std::string& cuped) {
    return ErrorOf(std::string(kMinimal) + "    metrics:\n      - {name: revenue, cuped: " + cuped + "}\n");
  };
  EXPECT_NE(with("{covariat: x}").find("metrics[0].cuped"), std::string::npos) << with("{covariat: x}");
  EXPECT_NE(with("{}").find("covariate"), std::string::npos) << with("{}");
  EXPECT_NE(with("pre_revenue").find("cuped"), std::string::npos) << with("pre_revenue");
  EXPECT_NE(with("{covariate: 'a b'}").find("not a valid metric name"), std::string::npos);
}

TEST(GatewayConfigTest, ReportsYamlSyntaxErrorsWithLine) {
  EXPECT_NE(ErrorOf("server:\n  listen: [unclosed\n").find("line"), std::string::npos);
}

// Issue 14: an 8-line alias bomb (9^8 values) took 20 s and 4 GB, then aborted; a node that
// contains itself recursed until the stack overflowed. Both are now a config error at once.
TEST(GatewayConfigTest, Issue14AliasBombAndSelfReferenceAreRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c) {
    bomb += StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 9; ++i) bomb += StrCat(i ? ", " : "", "*", std::string(1, static_cast<char>(c - 1)));
    bomb += "]\n";
  }
  EXPECT_NE(ErrorOf(bomb).find("YAML expands to too many values"), std::string::npos) << ErrorOf(bomb);
  EXPECT_NE(ErrorOf("experiments: &a [1, *a]\n").find("YAML nests deeper than 256 levels"), std::string::npos);
  // Ordinary aliases still work.
  auto ok = YamlToJson("base: &b {x: 1}\nuse: *b\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->at("use").at("x").as_int64(), 1);
}

std::string BanditYaml(std::string_view bandit, std::string_view metrics = "[{name: booked, type: binary}]",
                       int arms = 2) {
  std::string yaml = "experiments:\n  - name: e\n    routing_mode: bandit\n    metrics: " + std::string(metrics) +
                     "\n    bandit: " + std::string(bandit) + "\n    arms:\n";
  for (int i = 0; i < arms; ++i) {
    yaml += "      - {name: A" + std::to_string(i) + ", weight: 1, upstream: 'http://h:1/x'}\n";
  }
  return yaml;
}

TEST(GatewayConfigTest, AConclusionRoundTripsAndNamesArms) {
  const std::string arms = "    arms:\n      - {name: A, weight: 0, upstream: 'http://h:1/x'}\n"
                           "      - {name: B, weight: 100, upstream: 'http://h:1/y'}\n";
  auto c = ParseGatewayConfig("experiments:\n  - name: e\n    control: B\n    state: stopped\n"
                              "    conclusion: {action: promote, winner: B, tested_control: A, at_us: 17, reason: why}\n" +
                              arms);
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& e = c->experiments[0];
  ASSERT_TRUE(e.conclusion);
  EXPECT_EQ(e.conclusion->tested_control, "A");
  EXPECT_EQ(e.conclusion->at_us, 17);
  const auto j = ExperimentToJson(e);
  auto back = ParseExperimentConfig(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(boost::json::serialize(ExperimentToJson(*back)), boost::json::serialize(j));
  for (const char* bad : {"{action: promote, winner: C, tested_control: A}", "{action: win, winner: B, tested_control: A}",
                          "{action: promote, winner: B, tested_control: Z}", "[1]"}) {
    EXPECT_FALSE(ParseGatewayConfig("experiments:\n  - name: e\n    conclusion: " + std::string(bad) + "\n" + arms).ok())
        << bad;
  }
}

TEST(GatewayConfigTest, Issue18BanditParsesAndRoundTrips) {
  auto c = ParseGatewayConfig(BanditYaml("{metric: booked, floor: 0.1, update_interval: 30s}"));
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& e = c->experiments[0];
  EXPECT_EQ(e.routing_mode, RoutingMode::kBandit);
  ASSERT_TRUE(e.bandit);
  EXPECT_EQ(e.bandit->metric, "booked");
  EXPECT_DOUBLE_EQ(e.bandit->floor, 0.1);
  EXPECT_EQ(e.bandit->update_interval_us, 30'000'000);
  EXPECT_TRUE(e.metrics[0].primary);  // the bandit's metric decides
  const auto j = ExperimentToJson(e);
  auto back = ParseExperimentConfig(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(boost::json::serialize(ExperimentToJson(*back)), boost::json::serialize(j));
}

TEST(GatewayConfigTest, Issue18BanditMistakesAreNamed) {
  // floor × arms must be at most 1.
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked, floor: 0.3}", "[{name: booked, type: binary}]", 4))
                .find("bandit.floor 0.3 × 4 arms must be at most 1"),
            std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked, floor: -0.1}")).find("bandit.floor"), std::string::npos);
  // The metric must be a binary metric of the experiment.
  EXPECT_NE(ErrorOf(BanditYaml("{metric: revenue}")).find("bandit.metric 'revenue' must be one of the experiment's metrics"),
            std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: revenue}", "[{name: revenue, type: continuous}]"))
                .find("bandit.metric 'revenue' is continuous"),
            std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{floor: 0.1}")).find("bandit.metric is required"), std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked}", "[{name: booked}, {name: clicked, primary: true}]"))
                .find("must be the primary metric"),
            std::string::npos);
  // update_interval bounds.
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked, update_interval: 100ms}")).find("between 1s and 24h"),
            std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked, update_interval: 25h}")).find("between 1s and 24h"),
            std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked, update_intervall: 1m}")).find("bandit.update_intervall: unknown key"),
            std::string::npos);
  // Bandit mode needs the section, the section needs bandit mode, and two arms.
  EXPECT_NE(ErrorOf("experiments: [{name: e, routing_mode: bandit, arms: [{name: A, weight: 1, upstream: 'http://h:1/x'}, "
                    "{name: B, weight: 1, upstream: 'http://h:1/x'}]}]")
                .find("routing_mode bandit needs bandit: {metric"),
            std::string::npos);
  EXPECT_NE(ErrorOf("experiments: [{name: e, metrics: [{name: booked}], bandit: {metric: booked}, arms: [{name: A, "
                    "weight: 1, upstream: 'http://h:1/x'}]}]")
                .find("only with routing_mode: bandit"),
            std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked}", "[{name: booked}]", 1)).find("at least two arms"), std::string::npos);
  EXPECT_NE(ErrorOf(BanditYaml("{metric: booked}") + "    ramp: [{after: 1h, weights: [1, 1]}]\n").find("remove the ramp"),
            std::string::npos);
}

TEST(GatewayConfigTest, ExperimentRoundTripsThroughJson) {
  auto c = LoadGatewayConfig(std::string(ABGATE_SOURCE_DIR) + "/examples/hyatt.yaml");
  ASSERT_TRUE(c.ok());
  const auto j = ExperimentToJson(c->experiments[0]);
  auto back = ParseExperimentConfig(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(boost::json::serialize(ExperimentToJson(*back)), boost::json::serialize(j));
}

TEST(GatewayConfigTest, ParsesDurations) {
  EXPECT_EQ(*ParseDurationUs("250ms"), 250'000);
  EXPECT_EQ(*ParseDurationUs("24h"), 86'400'000'000LL);
  EXPECT_EQ(*ParseDurationUs("0s"), 0);
  EXPECT_EQ(*ParseDurationUs("1.5m"), 90'000'000);
  EXPECT_FALSE(ParseDurationUs("-1s").ok());
  EXPECT_FALSE(ParseDurationUs("soon").ok());
  EXPECT_FALSE(ParseDurationUs("3 weeks").ok());
  // A number of seconds beyond int64 microseconds is refused rather than converted (undefined).
  EXPECT_EQ(ErrorOf("upstream: {request_timeout: 1e300}\nexperiments: []"), "upstream.request_timeout: is too long");
}

}  // namespace
}  // namespace abgate::config

namespace abgate::config {
namespace {

TEST(ControllerConfig, ExampleParsesAndMistakesAreNamed) {
  auto c = LoadGatewayConfig(std::string(ABGATE_SOURCE_DIR) + "/examples/controller.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->controller.has_value());
  ASSERT_EQ(c->controller->models.size(), 1u);
  const auto& m = c->controller->models[0];
  EXPECT_EQ(m.plan.size(), 2u);
  EXPECT_EQ(m.plan[1].percent, 50);
  EXPECT_EQ(m.parsed.guardrails.max_error_rate, 0.02);
  EXPECT_EQ(m.max_duration_us, int64_t{14} * 86400 * 1000000);
  const std::string base = "experiments: []\ncontroller:\n  models:\n    - name: m\n";
  // A copy: message() views the temporary StatusOr's status (a use after free under ASan).
  auto bad = [&](const std::string& rest) { return std::string(ParseGatewayConfig(base + rest).status().message()); };
  EXPECT_NE(bad("      plan: [{percent: 100}]\n").find("100% is the promotion itself"), std::string::npos);
  EXPECT_NE(bad("      plan: [{percent: 50}, {percent: 10}]\n").find("must not decrease"), std::string::npos);
  EXPECT_NE(bad("      experiment: {arms: []}\n      plan: [{percent: 10}]\n").find("set by the controller"),
            std::string::npos);
  EXPECT_NE(bad("      plan: [{percent: 10, min_units: x}]\n").find("min_units"), std::string::npos);
  EXPECT_NE(bad("      plan: [{percent: 10}]\n      upstreams: {\"2\": \"ftp://x\"}\n").find("http"), std::string::npos);
  // The shadow gate is on unless turned off.
  EXPECT_TRUE(m.shadow_gate);
  auto off = ParseGatewayConfig(base + "      plan: [{percent: 10}]\n      shadow_gate: false\n");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->controller->models[0].shadow_gate);
  EXPECT_NE(bad("      plan: [{percent: 10}]\n      shadow_gate: maybe\n").find("shadow_gate"), std::string::npos);
}

TEST(ConfigTest, Issue17RetrainSection) {
  const std::string models =
      "experiments: []\ncontroller:\n  models:\n    - name: m\n      experiment: {payload_sample_rate: 0.2}\n"
      "      plan: [{percent: 10}]\n";
  auto c = ParseGatewayConfig(models +
                              "  retrain: {model: m, every: 12h, min_new_labels: 500, top_ranked_only: true,\n"
                              "            params: {max_depth: 6, eta: 0.1, rounds: 80}}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->controller->retrain.size(), 1u);
  const RetrainConfig& r = c->controller->retrain[0];
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.every_us, int64_t{12} * 3600 * 1000000);
  EXPECT_EQ(r.min_new_labels, 500);
  EXPECT_TRUE(r.top_ranked_only);
  EXPECT_TRUE(r.inverse_probability_weights);
  EXPECT_EQ(r.rounds, 80);
  EXPECT_EQ(r.params, (std::vector<std::pair<std::string, std::string>>{{"max_depth", "6"}, {"eta", "0.1"}}));
  auto bad = [&](const std::string& base, const std::string& rest) {
    return std::string(ParseGatewayConfig(base + rest).status().message());
  };
  EXPECT_NE(bad(models, "  retrain: {model: other}\n").find("must name one of controller.models"), std::string::npos);
  EXPECT_NE(bad(models, "  retrain: [{model: m, min_new_labels: 0}]\n").find("retrain[0].min_new_labels"),
            std::string::npos);
  EXPECT_NE(bad(models, "  retrain: {model: m, wieght: ipw}\n").find("wieght"), std::string::npos);
  EXPECT_NE(bad(models, "  retrain: {model: m, params: {rounds: 0}}\n").find("rounds"), std::string::npos);
  // Nothing to train on: the model's experiments sample no payloads.
  const std::string no_payloads = "experiments: []\ncontroller:\n  models:\n    - name: m\n      plan: [{percent: 10}]\n";
  EXPECT_NE(bad(no_payloads, "  retrain: {model: m}\n").find("payload_sample_rate"), std::string::npos);
}

}  // namespace
}  // namespace abgate::config
