// Notification latency: from an append's COMMIT returning to the notification that covers its
// position arriving at a listener. An appender paces single-event appends at --rate per second;
// a listener (another connection, LISTEN everest) timestamps every notification. Prints p50,
// p90, p99 and max in milliseconds.
// --wait: the listener calls everest.wait_for_position(last, 1000) in a loop instead of LISTEN
// (the wake-up for standbys and transaction poolers); --wait-on CONNINFO runs it on another
// server (a hot standby), which measures how far that server's safe_position() trails.
//   notify_latency [--rate 1000] [--seconds 10] [--wait] [--wait-on CONNINFO] [CONNINFO]
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

PGconn* connect_or_die(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "connection failed: %s", PQerrorMessage(conn));
    std::exit(2);
  }
  return conn;
}

long long parse_position(const char* payload) {
  const char* p = std::strstr(payload, "\"position\":");
  return p ? std::atoll(p + 11) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int rate = 1000, seconds = 10;
  bool wait_mode = false;
  std::string conninfo, wait_conninfo;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--rate" && i + 1 < argc) rate = std::atoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atoi(argv[++i]);
    else if (a == "--wait") wait_mode = true;
    else if (a == "--wait-on" && i + 1 < argc) wait_mode = true, wait_conninfo = argv[++i];
    else conninfo = a;
  }
  if (wait_conninfo.empty()) wait_conninfo = conninfo;

  // Listener: records (position, arrival) for every notification.
  std::mutex mu;
  std::vector<std::pair<long long, Clock::time_point>> heard;
  std::atomic<bool> stop{false};
  PGconn* listener = connect_or_die(wait_mode ? wait_conninfo : conninfo);
  if (!wait_mode) PQclear(PQexec(listener, "LISTEN everest"));
  std::thread listen_thread([&] {
    if (wait_mode) {  // wait_for_position(last, 1000) in a loop; every return is an arrival
      long long last = 0;
      PGresult* r0 = PQexec(listener, "SELECT everest.safe_position()");
      if (PQresultStatus(r0) == PGRES_TUPLES_OK) last = std::atoll(PQgetvalue(r0, 0, 0));
      PQclear(r0);
      while (!stop) {
        std::string sql = "SELECT everest.wait_for_position(" + std::to_string(last) + ", 1000)";
        PGresult* r = PQexec(listener, sql.c_str());
        auto now = Clock::now();
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
          long long got = std::atoll(PQgetvalue(r, 0, 0));
          if (got > last) {
            std::lock_guard<std::mutex> lock(mu);
            heard.emplace_back(got, now);
            last = got;
          }
        } else {
          std::fprintf(stderr, "wait_for_position failed: %s", PQerrorMessage(listener));
        }
        PQclear(r);
      }
      return;
    }
    pollfd pfd{PQsocket(listener), POLLIN, 0};
    while (!stop) {
      if (poll(&pfd, 1, 50) <= 0) continue;
      PQconsumeInput(listener);
      while (PGnotify* n = PQnotifies(listener)) {
        auto now = Clock::now();
        std::lock_guard<std::mutex> lock(mu);
        heard.emplace_back(parse_position(n->extra), now);
        PQfreemem(n);
      }
    }
  });

  // Appender: paced single-event appends; records (position, commit returned).
  PGconn* appender = connect_or_die(conninfo);
  std::vector<std::pair<long long, Clock::time_point>> committed;
  auto start = Clock::now();
  auto interval = std::chrono::nanoseconds(1000000000LL / rate);
  auto next = start;
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    PGresult* r = PQexec(appender,
                         "SELECT last_position FROM everest.append_event("
                         "'latency-' || (random() * 1000)::int, 'Tick')");
    auto now = Clock::now();
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
      committed.emplace_back(std::atoll(PQgetvalue(r, 0, 0)), now);
    else
      std::fprintf(stderr, "append failed: %s", PQerrorMessage(appender));
    PQclear(r);
    next += interval;
    std::this_thread::sleep_until(next);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  listen_thread.join();

  // For each commit, the first notification with a position >= it, heard after the commit.
  std::vector<double> latencies;
  std::size_t missed = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [position, at] : committed) {
      auto it = std::find_if(heard.begin(), heard.end(), [&](const auto& h) {
        return h.first >= position && h.second >= at;
      });
      if (it == heard.end()) {
        missed++;
        continue;
      }
      latencies.push_back(std::chrono::duration<double, std::milli>(it->second - at).count());
    }
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1,
                                                        static_cast<std::size_t>(p * latencies.size()))];
  };
  std::printf("appends %zu (%.0f/s), %s %zu, not covered %zu\n", committed.size(),
              committed.size() / static_cast<double>(seconds),
              wait_mode ? "wait_for_position returns" : "notifications", heard.size(), missed);
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", pct(0.50), pct(0.90), pct(0.99),
              latencies.empty() ? 0.0 : latencies.back());
  PQfinish(appender);
  PQfinish(listener);
  return missed == 0 ? 0 : 1;
}
