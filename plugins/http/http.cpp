#include "plugins/http/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <thread>

namespace gray::http {

namespace {

// libcurl's global state is set up once, before the first handle.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Header names whose values are credentials.
bool secret_header(const std::string& name) {
  std::string n = lower(name);
  return n == "authorization" || n == "x-api-key" || n == "x-consul-token" || n == "accesstoken" || n == "cookie" ||
         n == "proxy-authorization" || n.find("token") != std::string::npos || n.find("secret") != std::string::npos ||
         n.find("password") != std::string::npos;
}

// The request's secrets: those it names, and the values of credential headers, whole and
// without their scheme ("Bearer abc" also hides a bare "abc", "Basic eHk=" a bare "eHk=").
std::vector<std::string> secrets_of(const Request& r) {
  std::vector<std::string> secrets = r.secrets;
  for (const auto& [name, value] : r.headers)
    if (secret_header(name) && !value.empty()) {
      secrets.push_back(value);
      if (size_t sp = value.find(' '); sp != std::string::npos && sp + 1 < value.size()) secrets.push_back(value.substr(sp + 1));
    }
  return secrets;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after a redirect or 100 Continue) starts over
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
    (*headers)[lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

bool retryable_status(long status) { return status == 502 || status == 503 || status == 504; }

}  // namespace

struct Client::Impl {
  CURL* handle = nullptr;
  std::function<void(double)> sleep;
};

Client::Client(std::function<void(double ms)> sleep) : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->handle = curl_easy_init();
  impl_->sleep = sleep ? std::move(sleep) : [](double ms) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(ms * 1000)));
  };
}

Client::~Client() {
  if (impl_->handle) curl_easy_cleanup(impl_->handle);
}

Response Client::send(const Request& r) {
  const std::vector<std::string> secrets = secrets_of(r);
  const bool idempotent = r.idempotent.value_or(r.method == "GET" || r.method == "HEAD");
  const int attempts = idempotent ? 1 + std::max(0, r.retries) : 1;
  double backoff = r.backoff_ms;
  Response out;
  auto t0 = std::chrono::steady_clock::now();
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    CURL* h = impl_->handle;
    curl_easy_reset(h);
    std::string body;
    std::map<std::string, std::string> headers;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* list = nullptr;
    for (const auto& [name, value] : r.headers) list = curl_slist_append(list, (name + ": " + value).c_str());
    // No "Expect: 100-continue" round trip on large bodies.
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max(1.0, r.connect_timeout_ms)));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max(1.0, r.timeout_ms)));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (r.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (r.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, r.body.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(r.body.size()));
    }
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(list);
    out.attempts = attempt;
    if (rc == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      out.status = status;
      out.body = std::move(body);
      out.headers = std::move(headers);
      out.error.clear();
      if (!(idempotent && retryable_status(status) && attempt < attempts)) break;
    } else {
      out.status = 0;
      out.body.clear();
      out.headers.clear();
      std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      out.error = redact(what, secrets);
      if (out.error.empty()) out.error = "transport error";
      if (attempt >= attempts) break;
    }
    impl_->sleep(backoff);
    backoff *= 2;
  }
  out.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::string Response::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::string Response::describe(const Request& r) const {
  std::string where = r.method + " " + display_url(r.url);
  std::string tries = attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : "";
  if (!error.empty()) return where + ": " + error + tries;
  // Redact first, then cut: a secret across the cut must not show its first bytes.
  std::string text = redact(body, secrets_of(r));
  const bool cut = text.size() > 200;
  text.resize(std::min<size_t>(text.size(), 200));
  for (char& c : text)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (cut) text += "...";
  return "HTTP " + std::to_string(status) + " from " + where + tries + (text.empty() ? "" : ": " + text);
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += url_encode(k) + "=" + url_encode(v);
  }
  return out;
}

static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view s) {
  std::string out;
  out.reserve((s.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(s[i]) << 16) | (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < s.size()) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    if (i + 1 < s.size()) v |= static_cast<unsigned char>(s[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < s.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view s, std::string& out) {
  out.clear();
  if (s.size() % 4 != 0) return false;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  for (size_t i = 0; i < s.size(); i += 4) {
    int a = val(s[i]), b = val(s[i + 1]);
    bool last = i + 4 == s.size();
    int c = s[i + 2] == '=' && last ? -2 : val(s[i + 2]);
    int d = s[i + 3] == '=' && last ? -2 : val(s[i + 3]);
    if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2)) return false;
    unsigned v = (a << 18) | (b << 12) | ((c < 0 ? 0 : c) << 6) | (d < 0 ? 0 : d);
    out += static_cast<char>((v >> 16) & 255);
    if (c >= 0) out += static_cast<char>((v >> 8) & 255);
    if (d >= 0) out += static_cast<char>(v & 255);
  }
  return true;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 8)) text.replace(pos, s.size(), "<secret>");
    // The percent-encoded form too, as it appears in URLs and form bodies.
    std::string enc = url_encode(s);
    if (enc != s)
      for (size_t pos = text.find(enc); pos != std::string::npos; pos = text.find(enc, pos + 8)) text.replace(pos, enc.size(), "<secret>");
  }
  return text;
}

std::string display_url(std::string_view url) {
  std::string u(url.substr(0, url.find_first_of("?#")));
  size_t scheme = u.find("://");
  if (scheme != std::string::npos) {
    size_t host_start = scheme + 3;
    size_t at = u.find('@', host_start);
    size_t slash = u.find('/', host_start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) u.erase(host_start, at + 1 - host_start);
  }
  return u;
}

}  // namespace gray::http
