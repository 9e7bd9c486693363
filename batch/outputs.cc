#include "batch/outputs.h"

#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "adapters/csv_reader.h"
#include "adapters/csv_writer.h"

namespace carecard {

std::map<std::string, std::string> RenderSettlementFiles(const PayoutPeriod& period, const Registry& reg,
                                                         const SettlementResult& r, int threads) {
  const std::string p = period.ToString();
  // One job per file: each file's bytes depend only on the result, so the
  // files can be rendered at the same time without changing a byte.
  std::vector<std::function<std::pair<std::string, std::string>()>> jobs;
  auto card_of = [&](int32_t card) -> const Card& { return reg.cards[static_cast<size_t>(card)]; };
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"period", "month", "card_no", "person_id", "center_id", "card_type", "net_deposit", "tier", "subsidy",
                "status", "reason", "rule_version"});
    for (const auto& cm : r.card_months) {
      const Card& card = card_of(cm.card);
      w.WriteRow({p, cm.month.ToString(), card.card_no, reg.elders[static_cast<size_t>(card.elder)].person_id,
                  reg.centers[static_cast<size_t>(card.center)].center_id, std::to_string(card.card_type),
                  cm.net_deposit.ToString(), cm.tier ? std::to_string(cm.tier) : "", cm.subsidy.ToString(),
                  CardMonthStatusName(cm.status), cm.reason, cm.rule_version});
    }
    return {"card_months.csv", w.Release()};
  });
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"period", "original_month", "card_no", "center_id", "recorded_subsidy", "recomputed_subsidy", "amount",
                "reason"});
    for (const auto& a : r.adjustments) {
      w.WriteRow({p, a.original_month.ToString(), a.card_no, a.center_id, a.recorded.ToString(), a.recomputed.ToString(),
                  a.amount.ToString(), a.reason});
    }
    return {"adjustments.csv", w.Release()};
  });
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"period", "center_id", "center_name", "credit_code", "bank_account", "cards_paid", "subsidy_total",
                "adjustment_total", "carried_in", "payout", "carried_out"});
    for (const auto& x : r.payouts) {
      w.WriteRow({p, x.center_id, x.center_name, x.credit_code, x.bank_account, std::to_string(x.cards_paid),
                  x.subsidy_total.ToString(), x.adjustment_total.ToString(), x.carried_in.ToString(), x.payout.ToString(),
                  x.carried_out.ToString()});
    }
    return {"payouts.csv", w.Release()};
  });
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"period", "card_no", "center_id", "opening", "deposits", "reversals", "subsidies", "consumption", "refunds",
                "closing"});
    for (const auto& s : r.statements) {
      w.WriteRow({p, s.card_no, s.center_id, s.opening.ToString(), s.flows.deposits.ToString(),
                  s.flows.reversals.ToString(), s.flows.subsidies.ToString(), s.flows.consumption.ToString(),
                  s.flows.refunds.ToString(), s.closing.ToString()});
    }
    return {"statements.csv", w.Release()};
  });
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"period", "serving_center_id", "home_center_id", "service", "transactions", "amount"});
    for (const auto& c : r.consumption_by_center) {
      w.WriteRow({p, c.serving_center_id, c.home_center_id, c.service, std::to_string(c.transactions), c.amount.ToString()});
    }
    return {"consumption_by_center.csv", w.Release()};
  });
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"month", "institution_id", "person_id", "reason"});
    for (const auto& h : r.homebed_exclusions) w.WriteRow({h.month.ToString(), h.institution_id, h.person_id, h.reason});
    return {"homebed_exclusions.csv", w.Release()};
  });
  jobs.push_back([&]() -> std::pair<std::string, std::string> {
    CsvWriter w;
    w.WriteRow({"code", "severity", "file", "line", "txn_id", "card_no", "person_id", "month", "detail"});
    for (const auto& e : r.exceptions) {
      w.WriteRow({e.code, SeverityName(e.severity), e.file, std::to_string(e.line), e.txn_id, e.card_no, e.person_id,
                  e.month, e.detail});
    }
    return {"exceptions.csv", w.Release()};
  });
  std::map<std::string, std::string> files;
  if (threads <= 1) {
    for (auto& job : jobs) files.insert(job());
    return files;
  }
  std::vector<std::future<std::pair<std::string, std::string>>> running;
  for (auto& job : jobs) running.push_back(std::async(std::launch::async, job));
  for (auto& f : running) files.insert(f.get());
  return files;
}

std::string RenderManifest(const ManifestInputs& in, const std::map<std::string, std::string>& outputs,
                           const SettlementResult& result) {
  using nlohmann::ordered_json;
  ordered_json m;
  m["schema"] = "carecard-manifest/1";
  m["engine"] = {{"name", "carecard"}, {"version", in.engine_version}, {"build", in.engine_build}};
  m["period"] = in.period.ToString();
  m["state"] = in.closed ? "closed" : "draft";
  ordered_json months = ordered_json::array();
  for (YearMonth x = in.period.first_month(); x <= in.period.last_month(); x = x.Next()) months.push_back(x.ToString());
  m["months"] = months;
  m["book_first_period"] = in.book_first_period;
  ordered_json versions = ordered_json::array();
  for (const auto& v : in.policy->versions) {
    versions.push_back({{"version", v.version}, {"from", v.from.ToString()}, {"to", v.to ? v.to->ToString() : ""}});
  }
  m["policy"] = {{"id", in.policy->policy_id},
                 {"file", in.rules_file},
                 {"sha256", in.rules_sha256},
                 {"timezone", in.policy->timezone.ToString()},
                 {"months_per_period", in.policy->months_per_period},
                 {"versions", versions}};
  ordered_json inputs = ordered_json::array();
  for (size_t i = 0; i < in.inputs.size(); ++i) {
    const auto& f = in.inputs[i];
    ordered_json entry = {{"file", f.file}, {"kind", InputKindName(f.kind)}, {"bytes", f.bytes}, {"sha256", f.sha256}};
    for (const auto& c : in.counts) {
      if (c.file != f.file) continue;
      entry["rows_read"] = c.read;
      entry["rows_accepted"] = c.accepted;
      entry["rows_rejected"] = c.rejected;
      entry["rows_deferred"] = c.deferred;
    }
    inputs.push_back(entry);
  }
  m["inputs"] = inputs;
  ordered_json outs = ordered_json::array();
  for (const auto& [name, bytes] : outputs) {
    int64_t rows = 0;
    for (char c : bytes) rows += c == '\n';
    outs.push_back({{"file", name}, {"bytes", bytes.size()}, {"rows", rows > 0 ? rows - 1 : 0}, {"sha256", Sha256Hex(bytes)}});
  }
  m["outputs"] = outs;
  const ControlTotals& t = result.totals;
  m["control_totals"] = {{"cards", t.cards},
                         {"card_months", t.card_months},
                         {"card_months_paid", t.card_months_paid},
                         {"deposits", t.deposits.ToString()},
                         {"reversals", t.reversals.ToString()},
                         {"consumption", t.consumption.ToString()},
                         {"refunds", t.refunds.ToString()},
                         {"subsidies", t.subsidies.ToString()},
                         {"adjustments", t.adjustments.ToString()},
                         {"payouts", t.payouts.ToString()},
                         {"carried_out", t.carried_out.ToString()}};
  std::map<std::string, int64_t> by_code;
  for (const auto& e : result.exceptions) ++by_code[e.code];
  ordered_json codes = ordered_json::object();
  for (const auto& [code, n] : by_code) codes[code] = n;
  m["exceptions_by_code"] = codes;
  m["previous_manifest_sha256"] = in.previous_manifest_sha256 ? ordered_json(*in.previous_manifest_sha256) : ordered_json(nullptr);
  return m.dump(2) + "\n";
}

}  // namespace carecard
