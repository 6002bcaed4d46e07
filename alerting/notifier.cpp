#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "alerting/alerting.h"
#include "alerting/internal/grouping.h"
#include "alerting/internal/matcher.h"
#include "alerting/internal/payload.h"

namespace modelpulse::alerting {
namespace {

constexpr std::string_view kGroupSpace = "alerting_groups";
constexpr size_t kEventsPerStep = 1000;
constexpr std::string_view kUserAgent = "modelpulse/0.1.0";

enum class Kind { kAlertmanager, kWebhook };

struct Destination {
  std::string name;
  Kind kind = Kind::kWebhook;
  const HttpEndpoint* endpoint = nullptr;
  std::string url;
  Millis max_age{0};
  const ReceiverConfig* receiver = nullptr;  // kWebhook only
  GroupTimings timings;
  std::vector<Matcher> matchers;
  std::string route_key;
  std::deque<OutboxDelivery> queue;  // by id: the sending order
  bool in_flight = false;            // the head is being sent; shedding leaves it alone
  prometheus::Counter* sent = nullptr;
  prometheus::Counter* failed = nullptr;
  prometheus::Counter* retried = nullptr;
  prometheus::Counter* given_up = nullptr;
  prometheus::Counter* shed = nullptr;
  prometheus::Gauge* queue_length = nullptr;
  prometheus::Gauge* oldest_age = nullptr;
  prometheus::Histogram* latency = nullptr;
};

std::string GroupStateKey(const std::string& receiver, const std::string& group_key) {
  return receiver + "\x1f" + group_key;
}

bool IsSuccess(int status) { return status >= 200 && status < 300; }
// As Alertmanager's notifier: 5xx is worth retrying, other answers will not change. 408 and 429
// say "later" explicitly.
bool IsRetryable(int status) { return status >= 500 || status == 408 || status == 429; }

class NotifierImpl final : public Notifier {
 public:
  NotifierImpl(AlertingConfig config, NotifierOptions options, NotificationOutbox& outbox,
               StateStore& states, Transport& transport, const Clock& clock)
      : config_(std::move(config)),
        options_(options),
        outbox_(outbox),
        states_(states),
        transport_(transport),
        clock_(clock),
        rng_(options.seed != 0 ? options.seed : std::random_device{}()),
        registry_(std::make_shared<prometheus::Registry>()) {}

  Status Init() {
    auto& total =
        *(total_family_ =
              &prometheus::BuildCounter()
                   .Name("modelpulse_notifications_total")
                   .Help("Notifications by destination and result (sent, failed, retried, "
                         "given_up, shed).")
                   .Register(*registry_));
    auto& queue = prometheus::BuildGauge()
                      .Name("modelpulse_notification_queue_length")
                      .Help("Notifications waiting in the outbox, per destination.")
                      .Register(*registry_);
    auto& oldest = prometheus::BuildGauge()
                       .Name("modelpulse_notification_oldest_pending_age_seconds")
                       .Help("Age of the oldest notification waiting, per destination.")
                       .Register(*registry_);
    auto& latency =
        prometheus::BuildHistogram()
            .Name("modelpulse_notification_delivery_latency_seconds")
            .Help("Time from a notification entering the outbox to its successful delivery.")
            .Register(*registry_);
    const prometheus::Histogram::BucketBoundaries buckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                             5,    10,   30,  60,   300, 900, 3600};
    const auto add = [&](Destination d) {
      const prometheus::Labels labels = {{"receiver", d.name}};
      const auto with = [&](const char* result) {
        prometheus::Labels l = labels;
        l["result"] = result;
        return &total.Add(l);
      };
      d.sent = with("sent");
      d.failed = with("failed");
      d.retried = with("retried");
      d.given_up = with("given_up");
      d.shed = with("shed");
      d.queue_length = &queue.Add(labels);
      d.oldest_age = &oldest.Add(labels);
      d.latency = &latency.Add(labels, buckets);
      by_name_[d.name] = destinations_.size();
      destinations_.push_back(std::move(d));
    };
    for (size_t i = 0; i < config_.alertmanagers.size(); ++i) {
      const AlertmanagerConfig& am = config_.alertmanagers[i];
      Destination d;
      d.name = fmt::format("alertmanager/{}", i);
      d.kind = Kind::kAlertmanager;
      d.endpoint = &am.endpoint;
      std::string base = am.endpoint.url.Reveal();
      while (!base.empty() && base.back() == '/') {
        base.pop_back();
      }
      d.url = base + "/api/v2/alerts";
      d.max_age = am.max_age;
      add(std::move(d));
    }
    for (const ReceiverConfig& receiver : config_.receivers) {
      Destination d;
      d.name = receiver.name;
      d.endpoint = &receiver.webhook;
      d.url = receiver.webhook.url.Reveal();
      d.max_age = receiver.max_age;
      d.receiver = &receiver;
      d.timings = {receiver.group_wait, receiver.group_interval, receiver.repeat_interval,
                   receiver.send_resolved};
      for (const std::string& text : receiver.matchers) {
        auto parsed = ParseMatchers(text);
        if (!parsed) {
          return Fail(Error::InvalidArgument(
              fmt::format("receiver \"{}\": {}", receiver.name, parsed.error().message)));
        }
        d.matchers.insert(d.matchers.end(), parsed->begin(), parsed->end());
      }
      d.route_key = RouteKey(d.matchers.empty() ? "" : MatchersString(d.matchers));
      add(std::move(d));
    }
    return LoadSaved();
  }

  void Run(std::stop_token stop) override {
    std::vector<std::jthread> senders;
    for (size_t i = 0; i < destinations_.size(); ++i) {
      senders.emplace_back([this, i, stop] { SenderLoop(destinations_[i], stop); });
    }
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      ConsumeEvents();
      FlushGroups();
      UpdateGauges();
      wake_.notify_all();
      wake_.wait_for(lock, stop, options_.poll_interval, [] { return false; });
    }
    lock.unlock();
    wake_.notify_all();
    // senders join here, each after its request in flight (bounded by its timeout).
  }

  void Step() override {
    std::unique_lock lock(mu_);
    ConsumeEvents();
    FlushGroups();
    for (Destination& d : destinations_) {
      while (SendOne(lock, d)) {
      }
    }
    UpdateGauges();
  }

  std::vector<DestinationStatus> Destinations() const override {
    std::lock_guard lock(mu_);
    const int64_t now = clock_.NowUnixMillis();
    std::vector<DestinationStatus> out;
    for (const Destination& d : destinations_) {
      out.push_back({d.name, d.queue.size(), OldestAgeSeconds(d, now)});
    }
    return out;
  }

  std::shared_ptr<prometheus::Collectable> MetricsCollectable() const override { return registry_; }

 private:
  static double OldestAgeSeconds(const Destination& d, int64_t now) {
    return d.queue.empty() ? 0.0 : static_cast<double>(now - d.queue.front().created_ms) / 1000.0;
  }

  // REQUIRES: mu_ is held.
  void UpdateGauges() {
    const int64_t now = clock_.NowUnixMillis();
    for (Destination& d : destinations_) {
      d.queue_length->Set(static_cast<double>(d.queue.size()));
      d.oldest_age->Set(OldestAgeSeconds(d, now));
    }
  }

  Status LoadSaved() {
    auto deliveries = outbox_.ReadDeliveries();
    if (!deliveries) {
      return Fail(deliveries.error());
    }
    OutboxChange orphans;
    std::map<std::string, size_t> given_up;  // by destination no longer configured
    for (OutboxDelivery& delivery : *deliveries) {
      auto it = by_name_.find(delivery.destination);
      if (it == by_name_.end()) {
        ++given_up[delivery.destination];
        orphans.remove.push_back(delivery.id);
        continue;
      }
      destinations_[it->second].queue.push_back(std::move(delivery));
    }
    auto groups = states_.GetStates(kGroupSpace);
    if (!groups) {
      return Fail(groups.error());
    }
    orphans.state_space = kGroupSpace;
    for (const auto& [key, text] : *groups) {
      const std::string receiver = key.substr(0, key.find('\x1f'));
      auto group = DecodeGroup(text);
      auto it = by_name_.find(receiver);
      if (!group || it == by_name_.end() || destinations_[it->second].kind != Kind::kWebhook) {
        orphans.states.emplace_back(key, std::nullopt);
        continue;
      }
      groups_[key] = {it->second, std::move(*group)};
    }
    if (!orphans.empty()) {
      if (auto applied = outbox_.ApplyOutboxChange(orphans); !applied) {
        return Fail(applied.error());
      }
    }
    for (const auto& [name, count] : given_up) {
      total_family_->Add({{"receiver", name}, {"result", "given_up"}})
          .Increment(static_cast<double>(count));
      spdlog::error("gave up {} pending notification(s) to \"{}\": no longer configured", count,
                    name);
    }
    size_t pending = 0;
    for (const Destination& d : destinations_) {
      pending += d.queue.size();
    }
    if (pending > 0) {
      spdlog::info("{} notification(s) pending from an earlier run", pending);
    }
    return {};
  }

  std::string NewIdempotencyKey() {
    std::uniform_int_distribution<uint64_t> dist;
    return fmt::format("{:016x}{:016x}", dist(rng_), dist(rng_));
  }

  OutboxDelivery NewDelivery(const Destination& d, std::string group_key, std::string body,
                             int64_t now) {
    OutboxDelivery delivery;
    delivery.destination = d.name;
    delivery.group_key = std::move(group_key);
    delivery.idempotency_key = NewIdempotencyKey();
    delivery.body = std::move(body);
    delivery.created_ms = now;
    delivery.next_attempt_ms = now;
    return delivery;
  }

  // Makes room for `incoming` new messages of `d` by shedding its oldest ones (not the one in
  // flight) into `change`. Returns the ids shed. REQUIRES: mu_ is held.
  std::vector<int64_t> ShedFor(const Destination& d, size_t incoming, OutboxChange& change) {
    std::vector<int64_t> shed;
    size_t total = d.queue.size() + incoming;
    for (size_t i = d.in_flight ? 1 : 0;
         i < d.queue.size() && total > options_.max_pending_per_destination; ++i, --total) {
      shed.push_back(d.queue[i].id);
      change.remove.push_back(d.queue[i].id);
    }
    return shed;
  }

  // Commits `change`; then drops `shed` from the queues and appends the inserted messages.
  // REQUIRES: mu_ is held.
  bool Commit(OutboxChange& change, const std::map<size_t, std::vector<int64_t>>& shed) {
    if (change.empty()) {
      return true;
    }
    auto ids = outbox_.ApplyOutboxChange(change);
    if (!ids) {
      spdlog::error("cannot update the notification outbox: {}", ids.error().ToString());
      return false;
    }
    for (const auto& [index, removed] : shed) {
      Destination& d = destinations_[index];
      for (int64_t id : removed) {
        auto it = std::find_if(d.queue.begin(), d.queue.end(),
                               [id](const OutboxDelivery& x) { return x.id == id; });
        if (it != d.queue.end()) {
          spdlog::warn(
              "outbox of \"{}\" full ({} messages): shed the oldest notification {} "
              "(queued {}s ago)",
              d.name, options_.max_pending_per_destination, id,
              (clock_.NowUnixMillis() - it->created_ms) / 1000);
          d.queue.erase(it);
          d.shed->Increment();
        }
      }
    }
    for (size_t i = 0; i < change.insert.size(); ++i) {
      OutboxDelivery delivery = change.insert[i];
      delivery.id = (*ids)[i];
      destinations_[by_name_.at(delivery.destination)].queue.push_back(std::move(delivery));
    }
    return true;
  }

  // Alert events to Alertmanager messages and aggregation groups. REQUIRES: mu_ is held.
  void ConsumeEvents() {
    auto events = outbox_.ReadEvents(kEventsPerStep);
    if (!events) {
      spdlog::error("cannot read alert events: {}", events.error().ToString());
      return;
    }
    if (events->empty()) {
      return;
    }
    const int64_t now = clock_.NowUnixMillis();
    std::vector<AlertEvent> alerts;
    for (const OutboxEvent& event : *events) {
      auto decoded = DecodeAlertEvent(event.body);
      if (!decoded) {
        spdlog::warn("skipping alert event {}: {}", event.id, decoded.error().message);
        continue;
      }
      for (const auto& [name, value] : config_.external_labels) {
        decoded->labels.emplace(name, value);
      }
      alerts.push_back(std::move(*decoded));
    }
    OutboxChange change;
    change.consume_events_through = events->back().id;
    change.state_space = kGroupSpace;
    std::map<std::string, GroupEntry> touched;  // copies, kept only once committed
    std::map<size_t, std::vector<int64_t>> shed;
    for (size_t index = 0; index < destinations_.size(); ++index) {
      Destination& d = destinations_[index];
      if (d.kind == Kind::kAlertmanager) {
        size_t added = 0;
        for (size_t i = 0; i < alerts.size(); i += options_.alerts_per_alertmanager_post) {
          const size_t end = std::min(alerts.size(), i + options_.alerts_per_alertmanager_post);
          const std::vector<AlertEvent> batch(alerts.begin() + static_cast<std::ptrdiff_t>(i),
                                              alerts.begin() + static_cast<std::ptrdiff_t>(end));
          change.insert.push_back(NewDelivery(d, "", AlertmanagerPayload(batch), now));
          ++added;
        }
        shed[index] = ShedFor(d, added, change);
        continue;
      }
      for (const AlertEvent& alert : alerts) {
        if (!MatchAll(d.matchers, alert.labels)) {
          continue;
        }
        const Labels group_labels = GroupLabels(alert.labels, d.receiver->group_by);
        const std::string group_key = GroupKey(d.route_key, group_labels);
        const std::string state_key = GroupStateKey(d.name, group_key);
        auto it = touched.find(state_key);
        if (it == touched.end()) {
          auto existing = groups_.find(state_key);
          GroupEntry entry = existing != groups_.end()
                                 ? existing->second
                                 : GroupEntry{index, AggregationGroup{group_key, group_labels}};
          it = touched.emplace(state_key, std::move(entry)).first;
        }
        AddAlert(it->second.group, alert, d.timings, now);
      }
    }
    for (const auto& [key, entry] : touched) {
      change.states.emplace_back(key, EncodeGroup(entry.group));
    }
    if (Commit(change, shed)) {
      for (auto& [key, entry] : touched) {
        groups_[key] = std::move(entry);
      }
    }
  }

  // Due aggregation groups to webhook messages. REQUIRES: mu_ is held.
  void FlushGroups() {
    const int64_t now = clock_.NowUnixMillis();
    OutboxChange change;
    change.state_space = kGroupSpace;
    std::map<std::string, std::optional<GroupEntry>> flushed;
    std::map<size_t, size_t> incoming;
    for (const auto& [key, entry] : groups_) {
      if (entry.group.next_flush_ms > now) {
        continue;
      }
      const Destination& d = destinations_[entry.destination];
      GroupEntry next = entry;
      FlushOutcome outcome = Flush(next.group, d.timings, now);
      if (outcome.notify) {
        WebhookMessage message{d.name,
                               next.group.key,
                               next.group.group_labels,
                               std::move(outcome.alerts),
                               config_.external_url,
                               d.receiver->max_alerts};
        std::optional<std::string> body = Body(d, message, now);
        if (body) {
          change.insert.push_back(NewDelivery(d, next.group.key, std::move(*body), now));
          ++incoming[entry.destination];
        }
      }
      if (outcome.group_empty) {
        change.states.emplace_back(key, std::nullopt);
        flushed[key] = std::nullopt;
      } else {
        change.states.emplace_back(key, EncodeGroup(next.group));
        flushed[key] = std::move(next);
      }
    }
    std::map<size_t, std::vector<int64_t>> shed;
    for (const auto& [index, count] : incoming) {
      shed[index] = ShedFor(destinations_[index], count, change);
    }
    if (!Commit(change, shed)) {
      return;
    }
    for (auto& [key, entry] : flushed) {
      if (entry) {
        groups_[key] = std::move(*entry);
      } else {
        groups_.erase(key);
      }
    }
  }

  // The webhook payload, or for a template receiver the body its template renders from it. A
  // template that fails is logged and counted as failed: the message is never written, since
  // every retry would fail alike. REQUIRES: mu_ is held.
  std::optional<std::string> Body(const Destination& d, const WebhookMessage& message,
                                  int64_t now) {
    std::string payload = WebhookPayload(message, now);
    if (d.receiver->body_template.empty()) {
      return payload;
    }
    Result<std::string> rendered =
        options_.render
            ? options_.render(d.receiver->body_template_name, d.receiver->body_template, payload)
            : Result<std::string>(Fail(Error::Unavailable("no template renderer")));
    if (!rendered) {
      d.failed->Increment();
      spdlog::error("notification to \"{}\" not sent: its body template {} failed: {}", d.name,
                    d.receiver->body_template_name, rendered.error().message);
      return std::nullopt;
    }
    return std::move(*rendered);
  }

  HttpRequest BuildRequest(const Destination& d, const OutboxDelivery& delivery, int64_t now) {
    HttpRequest request;
    request.endpoint = d.endpoint;
    request.url = d.url;
    request.body = delivery.body;
    request.headers = {{"Content-Type", d.receiver != nullptr ? d.receiver->content_type
                                                              : std::string("application/json")},
                       {"User-Agent", std::string(kUserAgent)},
                       {"Idempotency-Key", delivery.idempotency_key}};
    if (d.receiver != nullptr && !d.receiver->hmac_secret.empty()) {
      request.headers.emplace_back(
          "X-Modelpulse-Signature",
          SignatureHeader(d.receiver->hmac_secret, now / 1000, delivery.body));
    }
    return request;
  }

  void ApplyOrLog(const OutboxChange& change) {
    if (auto applied = outbox_.ApplyOutboxChange(change); !applied) {
      spdlog::error("cannot update the notification outbox: {}", applied.error().ToString());
    }
  }

  // Sends the head of `d` when it is due. Returns whether it did something (sent, failed, gave
  // up). REQUIRES: `lock` holds mu_; it is released while the request is in flight.
  bool SendOne(std::unique_lock<std::mutex>& lock, Destination& d) {
    if (d.in_flight || d.queue.empty()) {
      return false;
    }
    int64_t now = clock_.NowUnixMillis();
    const OutboxDelivery head = d.queue.front();
    if (head.next_attempt_ms > now) {
      return false;
    }
    OutboxChange change;
    if (now - head.created_ms > d.max_age.count()) {
      change.remove.push_back(head.id);
      ApplyOrLog(change);
      d.queue.pop_front();
      d.given_up->Increment();
      spdlog::error("gave up notification {} to \"{}\" after {} attempt(s): older than max_age {}",
                    head.id, d.name, head.attempts, FormatPromDuration(d.max_age));
      return true;
    }
    const HttpRequest request = BuildRequest(d, head, now);
    d.in_flight = true;
    lock.unlock();
    const Result<int> status = transport_.Post(request);
    lock.lock();
    d.in_flight = false;
    now = clock_.NowUnixMillis();
    // Nothing but this sender removes the head while it is in flight.
    OutboxDelivery& current = d.queue.front();
    if (status && IsSuccess(*status)) {
      change.remove.push_back(head.id);
      ApplyOrLog(change);
      d.latency->Observe(static_cast<double>(now - head.created_ms) / 1000.0);
      d.queue.pop_front();
      d.sent->Increment();
      return true;
    }
    const std::string why =
        status ? fmt::format("HTTP status {}", *status) : status.error().message;
    if (status && !IsRetryable(*status)) {
      change.remove.push_back(head.id);
      ApplyOrLog(change);
      d.queue.pop_front();
      d.failed->Increment();
      spdlog::error("notification {} to \"{}\" ({}) refused, not retried: {}", head.id, d.name,
                    RedactedUrl(d.url), why);
      return true;
    }
    ++current.attempts;
    const double unit = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    current.next_attempt_ms =
        now + BackoffMs(current.attempts, options_.initial_backoff, options_.max_backoff, unit);
    change.update.push_back(current);
    ApplyOrLog(change);
    d.retried->Increment();
    spdlog::warn("notification {} to \"{}\" ({}) failed, attempt {}, retrying in {} ms: {}",
                 head.id, d.name, RedactedUrl(d.url), current.attempts,
                 current.next_attempt_ms - now, why);
    return false;
  }

  void SenderLoop(Destination& d, std::stop_token stop) {
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      if (SendOne(lock, d)) {
        UpdateGauges();
        continue;
      }
      wake_.wait_for(lock, stop, options_.poll_interval, [] { return false; });
    }
  }

  struct GroupEntry {
    size_t destination = 0;
    AggregationGroup group;
  };

  AlertingConfig config_;
  NotifierOptions options_;
  NotificationOutbox& outbox_;
  StateStore& states_;
  Transport& transport_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::mt19937_64 rng_;                       // Guarded by mu_.
  std::vector<Destination> destinations_;     // fixed after Init; queues guarded by mu_
  std::map<std::string, size_t> by_name_;     // fixed after Init
  std::map<std::string, GroupEntry> groups_;  // Guarded by mu_.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* total_family_ = nullptr;  // in registry_
};

}  // namespace

Result<std::unique_ptr<Notifier>> Notifier::Create(AlertingConfig config, NotifierOptions options,
                                                   NotificationOutbox& outbox, StateStore& states,
                                                   Transport& transport, const Clock& clock) {
  auto notifier =
      std::make_unique<NotifierImpl>(std::move(config), options, outbox, states, transport, clock);
  if (auto status = notifier->Init(); !status) {
    return Fail(status.error());
  }
  return std::unique_ptr<Notifier>(std::move(notifier));
}

}  // namespace modelpulse::alerting
