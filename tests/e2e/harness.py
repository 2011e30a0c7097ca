"""The real servers of the end-to-end tests, started on 127.0.0.1 on free ports (Python 3
standard library only): sshd (the "hosts"), Prometheus, etcd, HAProxy, nginx, wrk, the demo
service fleet with its registration agents and the discovery client, and `gray` itself.

Every process is started by this module, remembered, and stopped by its PID (SIGTERM, then
SIGKILL after a grace period) when the harness ends; services that the deploy script starts
detached are stopped through their pid files.
"""

import base64
import json
import os
import re
import shutil
import signal
import random
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE_SCRIPT = os.path.join(HERE, "pipelines", "service.sh")
DISCOVERY_CLIENT = os.path.join(HERE, "discovery_client.py")
WRK_SCRIPT = os.path.join(HERE, "wrk_report.lua")
AGENT = os.path.join(os.path.dirname(HERE), "agents", "etcd_agent.py")


class SetupError(Exception):
    """A server did not start, or the machine lacks something the test needs."""


class MissingTool(SetupError):
    """A server binary is not installed: the test is skipped, not failed."""


def log(text):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {text}", flush=True)


def find_program(name):
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]:
        p = os.path.join(d, name)
        if d and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def require(*names):
    found = {}
    missing = []
    for n in names:
        p = find_program(n)
        if p:
            found[n] = p
        else:
            missing.append(n)
    if missing:
        raise MissingTool("not installed: " + ", ".join(missing) +
                          " (Debian: haproxy nginx etcd-server etcd-client prometheus openssh-server openssh-client wrk curl)")
    return found


# ---- ports and waiting ----

_taken_ports = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (never the same one twice).

    Picked below Linux's ephemeral range (32768-60999): ports the kernel hands out for port 0
    come from that range, where the outgoing connections of wrk, the clients and gray also take
    their local ports, and one of them could take it before the server binds it."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        if port in _taken_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken_ports.add(port)
        return port
    raise SetupError("no free TCP port on 127.0.0.1")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(url, timeout=2.0, headers=None):
    """(status, body text); status 0 and the error text when nothing answered."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def wait_until(what, check, timeout, every=0.05, proc=None):
    """Calls check() until it is true; SetupError naming `what` after `timeout` seconds, or at
    once when `proc` (a Proc) exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and not proc.running():
            raise SetupError(f"{what}: {proc.name} exited with status {proc.returncode()}; log: {proc.log_path}\n{proc.tail()}")
        time.sleep(every)
    tail = f"\n{proc.tail()}" if proc is not None else ""
    raise SetupError(f"{what}: not ready after {timeout:g} s{tail}")


# ---- processes ----

class Proc:
    """A child process with its output in a log file (or a pipe), stopped by PID."""

    registry = []

    def __init__(self, name, argv, log_path, env=None, cwd=None, stdout_pipe=False):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.rusage = None
        self._status = None
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self.log_file,
            stderr=self.log_file, env=env, cwd=cwd,
            # Its own process group: a Ctrl-C on the harness does not reach it directly, and
            # the harness decides the order in which things stop.
            start_new_session=True)
        self.pid = self.popen.pid
        Proc.registry.append(self)

    def running(self):
        if self._status is not None:
            return False
        self._reap(os.WNOHANG)
        return self._status is None

    def _reap(self, flags):
        try:
            pid, status, rusage = os.wait4(self.pid, flags)
        except ChildProcessError:
            if self._status is None:
                self._status = -1
            return
        if pid == self.pid:
            self._status = status
            self.rusage = rusage
            self.popen.returncode = os.waitstatus_to_exitcode(status)

    def wait(self, timeout=None):
        """The exit code (negative: killed by that signal); None if still running at timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._status is None:
            if deadline is None:
                self._reap(0)
                break
            self._reap(os.WNOHANG)
            if self._status is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return self.returncode()

    def returncode(self):
        return None if self._status is None else os.waitstatus_to_exitcode(self._status)

    def send(self, sig):
        if self.running():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace=5.0, sig=signal.SIGTERM):
        if self.running():
            self.send(sig)
            if self.wait(grace) is None:
                log(f"{self.name} (pid {self.pid}) ignored {signal.Signals(sig).name} for {grace:g} s: killing it")
                self.send(signal.SIGKILL)
                self.wait(5)
        self.log_file.close()
        return self.returncode()

    def tail(self, lines=15):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read()[-6000:].decode(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        except OSError:
            return ""

    @classmethod
    def stop_all(cls):
        for p in reversed(cls.registry):
            try:
                p.stop(grace=3)
            except Exception as e:  # keep stopping the others
                log(f"stopping {p.name}: {e}")
        cls.registry.clear()


# ---- sshd: the hosts ----

class Sshd:
    """A second sshd on loopback that lets the current user in with a key made for the test."""

    def __init__(self, root, tools):
        self.dir = os.path.join(root, "ssh")
        os.makedirs(self.dir)
        self.port = free_port()
        self.user = os.environ.get("USER") or __import__("getpass").getuser()
        self.key = os.path.join(self.dir, "id_ed25519")
        host_key = os.path.join(self.dir, "host_ed25519")
        for path in (self.key, host_key):
            subprocess.run([tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", path], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        shutil.copy(self.key + ".pub", os.path.join(self.dir, "authorized_keys"))
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {self.dir}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
""")
        # The host key, as ssh clients (gray's ssh driver) must know it: checked strictly.
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        try:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        except OSError as e:
            raise SetupError(f"sshd needs /run/sshd and it cannot be created ({e}); create it as root")
        self.proc = Proc("sshd", [tools["sshd"], "-D", "-e", "-f", config], os.path.join(self.dir, "sshd.log"))
        wait_until("sshd", lambda: port_open(self.port), 10, proc=self.proc)
        self.ssh = tools["ssh"]
        out = self.run("echo ssh-ok")
        if out.returncode != 0 or "ssh-ok" not in out.stdout:
            raise SetupError(f"ssh to 127.0.0.1:{self.port} as {self.user} failed: {out.stderr.strip()}\n{self.proc.tail()}")

    def stop(self):
        """Stops the listener, then the per-connection sshd processes it forked (connections that
        ssh clients keep open with ControlPersist would otherwise outlive it)."""
        children = child_pids(self.proc.pid)
        self.proc.stop()
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self, command, timeout=30):
        argv = [self.ssh, "-p", str(self.port), "-i", self.key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "LogLevel=ERROR", f"{self.user}@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def child_pids(parent):
    """PIDs whose parent is `parent`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return found


# ---- Prometheus ----

class Prometheus:
    def __init__(self, root, tools, targets):
        self.dir = os.path.join(root, "prometheus")
        os.makedirs(self.dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "prometheus.yml")
        listed = ", ".join(f"'127.0.0.1:{p}'" for p in targets)
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: [{listed}]
""")
        self.proc = Proc("prometheus", [tools["prometheus"], f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
                                        f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                         os.path.join(self.dir, "prometheus.log"))
        wait_until("prometheus", lambda: http_get(self.url + "/-/ready")[0] == 200, 20, proc=self.proc)

    def query(self, q):
        """The instant query's result list, or None when Prometheus could not answer."""
        status, body = http_get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=3)
        if status != 200:
            return None
        try:
            return json.loads(body)["data"]["result"]
        except (ValueError, KeyError):
            return None

    def scraping(self, port):
        r = self.query(f"up{{instance='127.0.0.1:{port}'}} == 1")
        return bool(r)


# ---- etcd ----

class Etcd:
    def __init__(self, root, tools):
        self.dir = os.path.join(root, "etcd")
        os.makedirs(self.dir)
        client, peer, metrics = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{client}"
        self.proc = Proc("etcd", [
            tools["etcd"], "--name", "e2e", "--data-dir", os.path.join(self.dir, "data"),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"e2e=http://127.0.0.1:{peer}", "--initial-cluster-state", "new",
            "--listen-metrics-urls", f"http://127.0.0.1:{metrics}", "--log-level", "warn", "--logger", "zap"],
            os.path.join(self.dir, "etcd.log"))
        wait_until("etcd", lambda: http_get(self.url + "/health")[0] == 200, 20, proc=self.proc)

    def _post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3) as resp:
            return json.loads(resp.read().decode() or "{}")

    def list_prefix(self, prefix):
        """{key: value} of the keys under `prefix`."""
        raw = bytearray(prefix.encode())
        raw[-1] += 1
        reply = self._post("/v3/kv/range", {"key": base64.b64encode(prefix.encode()).decode(),
                                            "range_end": base64.b64encode(bytes(raw)).decode()})
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode() for kv in reply.get("kvs", [])}

    def remove(self):
        shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)  # etcd preallocates ~120 MB


# ---- the demo service fleet ----

class Fleet:
    """N hosts, one demo service each, managed through the deploy script (as gray does over ssh).
    The hosts differ by name and service port; all are 127.0.0.1."""

    def __init__(self, world_dir, demo, service, hosts, fail_rates=None, lame_duck_ms=0):
        self.world = world_dir
        self.state = os.path.join(world_dir, "services")
        os.makedirs(self.state, exist_ok=True)
        self.service = service
        self.hosts = hosts  # [{"name", "port", "tags"}]
        rates = " ".join(f"{v}={r}" for v, r in (fail_rates or {}).items())
        with open(os.path.join(world_dir, "world.env"), "w") as f:
            f.write(f"DEMO='{demo}'\nSERVICE='{service}'\nSTATE='{self.state}'\nFAIL_RATES='{rates}'\nLAME_DUCK_MS={lame_duck_ms}\n")
        self.inventory = os.path.join(world_dir, "inventory.json")
        with open(self.inventory, "w") as f:
            json.dump({"hosts": [{"name": h["name"], "addr": "127.0.0.1", "port": h["port"], "tags": h["tags"]} for h in hosts]}, f, indent=2)

    def script(self, *args, check=True):
        out = subprocess.run(["sh", SERVICE_SCRIPT, self.world, *[str(a) for a in args]], capture_output=True, text=True, timeout=60)
        if check and out.returncode != 0:
            raise SetupError(f"service.sh {' '.join(map(str, args))}: {out.stderr.strip() or out.stdout.strip()}")
        return out

    def deploy_all(self, version):
        for h in self.hosts:
            self.script("deploy", h["port"], version)

    def versions(self):
        """{host name: running version or None}."""
        found = {}
        for h in self.hosts:
            out = self.script("status", h["port"], check=False)
            m = re.match(r"port \d+: (\S+) \(pid", out.stdout.strip())
            found[h["name"]] = m.group(1) if out.returncode == 0 and m else None
        return found

    def stop_all(self):
        for h in self.hosts:
            self.script("stop", h["port"], check=False)

    def log_tails(self):
        return {h["name"]: _tail(os.path.join(self.state, f"{h['port']}.log")) for h in self.hosts}


def _tail(path, lines=6):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-lines:]
    except OSError:
        return []


# ---- HAProxy ----

class HAProxy:
    def __init__(self, directory, tools, servers, canary_weight=0, stable_weight=100):
        """servers: [(name, port, group)] with group "stable" or "canary"."""
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.socket = os.path.join(self.dir, "admin.sock")
        self.backend = "app"
        self.url = f"http://127.0.0.1:{self.port}"
        lines = []
        for name, port, group in servers:
            weight = canary_weight if group == "canary" else stable_weight
            lines.append(f"  server {name} 127.0.0.1:{port} weight {weight} check")
        config = os.path.join(self.dir, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(f"""global
  stats socket {self.socket} mode 600 level admin
  maxconn 4096

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 10s
  timeout http-keep-alive 30s
  timeout queue 5s
  # A request whose server refused the connection, or closed it without answering (a service
  # that is stopping, a pooled connection closed under a new request), goes to another server.
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
  http-reuse safe

frontend fe
  bind 127.0.0.1:{self.port}
  default_backend {self.backend}

backend {self.backend}
  balance roundrobin
  option httpchk
  http-check send meth GET uri /health
  http-check expect status 200
  default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
""" + "\n".join(lines) + "\n")
        check = subprocess.run([tools["haproxy"], "-c", "-q", "-f", config], capture_output=True, text=True)
        if check.returncode != 0:
            raise SetupError(f"haproxy rejects {config}: {check.stderr.strip()}")
        self.proc = Proc("haproxy", [tools["haproxy"], "-db", "-f", config], os.path.join(self.dir, "haproxy.log"))
        wait_until("haproxy", lambda: port_open(self.port) and os.path.exists(self.socket), 10, proc=self.proc)

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.socket)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace")

    def servers(self):
        """{server: {"weight", "status", "stot"}} of the backend, from `show stat`."""
        text = self.command("show stat")
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == self.backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = {"weight": int(row.get("weight") or 0), "status": row.get("status", ""),
                                      "stot": int(row.get("stot") or 0)}
        return out

    def retries(self):
        """The backend's retried and redispatched requests (what HAProxy absorbed for clients)."""
        text = self.command("show stat")
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == self.backend and row.get("svname") == "BACKEND":
                return {"retries": int(row.get("wretr") or 0), "redispatches": int(row.get("wredis") or 0)}
        return {}

    def all_up(self, names):
        s = self.servers()
        return all(s.get(n, {}).get("status", "").startswith("UP") for n in names)


class WeightWatcher(threading.Thread):
    """Polls a gateway's weights every `every` seconds and remembers each change with its time
    (time.monotonic()), to measure how fast traffic moves."""

    def __init__(self, read, every=0.01):
        super().__init__(daemon=True)
        self.read = read
        self.every = every
        self.changes = []  # (t, {server: weight})
        self.errors = 0
        self.stopping = threading.Event()

    def run(self):
        last = None
        while not self.stopping.is_set():
            try:
                now = self.read()
            except OSError:
                self.errors += 1
                now = None
            t = time.monotonic()
            if now is not None and now != last:
                self.changes.append((t, now))
                last = now
            self.stopping.wait(self.every)

    def stop(self):
        self.stopping.set()
        self.join(timeout=2)


# ---- nginx ----

class Nginx:
    """nginx whose upstreams live in an include file that gray's nginx driver owns (see
    plugins/nginx/README.md): written here once as gray would write it for canary 0%."""

    def __init__(self, directory, tools, upstream, servers):
        """servers: [(name, port, group)] with group "stable" or "canary"."""
        self.dir = directory
        for sub in ("conf", "logs", "tmp"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.probe_url = f"{self.url}/gray-generation"
        self.binary = tools["nginx"]
        self.upstream = upstream
        self.include = os.path.join(self.dir, "conf", f"{upstream}.conf")
        self.conf = os.path.join(self.dir, "conf", "nginx.conf")
        self.stable = [f"127.0.0.1:{port}" for _, port, group in servers if group == "stable"]
        self.canary = [f"127.0.0.1:{port}" for _, port, group in servers if group == "canary"]
        u = upstream
        main = " ".join([f"server {a} weight=100;" for a in self.stable] + [f"server {a} down;" for a in self.canary])
        with open(self.include, "w") as f:
            f.write('# gray-state {"canary":0.0,"generation":0,"keys":[],"routes":[],"states":{},"v":1}\n')
            f.write(f"upstream {u} {{ zone gray_{u} 64k; {main} }}\n")
            f.write(f"upstream {u}_stable {{ zone gray_{u}_stable 64k; {' '.join(f'server {a};' for a in self.stable)} }}\n")
            f.write(f"upstream {u}_canary {{ zone gray_{u}_canary 64k; {' '.join(f'server {a};' for a in self.canary)} }}\n")
            f.write(f'map $host $gray_route_{u} {{ default ""; }}\n')
            f.write(f"map $gray_route_{u} $gray_upstream_{u} {{ default {u}; canary {u}_canary; stable {u}_stable; }}\n")
            f.write(f'map $host $gray_generation_{u} {{ default "0"; }}\n')
        t = os.path.join(self.dir, "tmp")
        with open(self.conf, "w") as f:
            f.write(f"""daemon off;
worker_processes 2;
pid {self.dir}/logs/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {t}/client;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  include {self.include};
  server {{
    listen 127.0.0.1:{self.port};
    keepalive_requests 100000;
    location / {{
      proxy_pass http://$gray_upstream_{u};
      # A refused connection, or a server that closed the connection without answering (a
      # service that is stopping): the request goes to the next server.
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      add_header X-Gray-Generation $gray_generation_{u} always;
    }}
    location = /gray-generation {{
      add_header X-Gray-Generation $gray_generation_{u} always;
      return 204;
    }}
  }}
}}
""")
        check = subprocess.run([self.binary, "-p", self.dir, "-c", self.conf, "-e", f"{self.dir}/logs/error.log", "-t"],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise SetupError(f"nginx rejects {self.conf}: {check.stderr.strip()}")
        self.proc = Proc("nginx", [self.binary, "-p", self.dir, "-c", self.conf, "-e", f"{self.dir}/logs/error.log"],
                         os.path.join(self.dir, "logs", "stderr.log"))
        wait_until("nginx", lambda: port_open(self.port), 10, proc=self.proc)

    def stop(self):
        # QUIT: graceful (workers finish their requests); the harness's Proc.stop sends TERM otherwise.
        self.proc.stop(grace=5, sig=signal.SIGQUIT)


# ---- wrk ----

class Wrk:
    """Steady traffic for the whole release: wrk with a Lua script that paces each connection
    and prints its counts as JSON when stopped (SIGINT)."""

    def __init__(self, directory, tools, url, connections=16, delay_ms=4, name="wrk"):
        self.log_path = os.path.join(directory, f"{name}.log")
        env = dict(os.environ, E2E_WRK_DELAY_MS=str(delay_ms))
        self.started = time.monotonic()
        self.proc = Proc(name, [tools["wrk"], "-t1", f"-c{connections}", "-d3600s", "--timeout", "5s", "-s", WRK_SCRIPT, url],
                         self.log_path, env=env)
        time.sleep(0.3)
        if not self.proc.running():
            raise SetupError(f"wrk exited at once: {self.proc.tail()}")

    def stop(self):
        self.proc.send(signal.SIGINT)
        if self.proc.wait(15) is None:
            raise SetupError("wrk did not stop on SIGINT")
        self.proc.stop()
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        m = re.search(r"^E2E_WRK (\{.*\})$", text, re.M)
        if not m:
            raise SetupError(f"wrk printed no summary:\n{text[-2000:]}")
        r = json.loads(m.group(1))
        r["wall_s"] = round(time.monotonic() - self.started, 2)
        r["socket_errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
        r["failed"] = r["status"] + r["socket_errors"]
        r["rps"] = round(r["requests"] / max(r["duration_us"] / 1e6, 1e-9))
        return r


# ---- registration agents and the discovery client ----

def start_agent(directory, etcd_url, prefix, service, host, version_file, ttl=5):
    return Proc(f"agent-{host['name']}", [
        "python3", AGENT, "--endpoint", etcd_url, "--prefix", prefix, "--service", service, "--id", host["name"],
        "--addr", f"127.0.0.1:{host['port']}", "--version-file", version_file, "--ttl", str(ttl), "--interval", "0.5"],
        os.path.join(directory, f"agent-{host['name']}.log"))


class DiscoveryClient:
    def __init__(self, directory, etcd_url, prefix, service, rate, poll=1.0):
        self.out_path = os.path.join(directory, "discovery_client.json")
        self.proc = Proc("discovery-client", ["python3", DISCOVERY_CLIENT, "--endpoint", etcd_url, "--prefix", prefix,
                                              "--service", service, "--poll", str(poll), "--rate", str(rate)],
                         os.path.join(directory, "discovery_client.log"), stdout_pipe=True)

    def stop(self):
        self.proc.send(signal.SIGTERM)
        out = self.proc.popen.stdout.read().decode(errors="replace")
        self.proc.wait(10)
        self.proc.stop()
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SetupError(f"the discovery client printed no counts: {out[-500:]!r}\n{self.proc.tail()}")


# ---- gray ----

class GrayRun:
    """One `gray run` / `gray resume` process with --format json: its events as they arrive
    (each stamped with time.monotonic() on receipt), its exit status and resource use."""

    def __init__(self, argv, log_path, cwd, on_event=None):
        self.argv = argv
        self.events = []
        self.on_event = on_event
        self.started = time.monotonic()
        self.proc = Proc("gray", argv, log_path, cwd=cwd, stdout_pipe=True)
        # The event stream as received, for reading after the run (stderr goes to log_path).
        self.events_path = os.path.splitext(log_path)[0] + "-events.jsonl"
        self.samples = {"cpu_self_s": 0.0, "peak_rss_kb": 0}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def _read(self):
        with open(self.events_path, "ab") as copy:
            for raw in self.proc.popen.stdout:
                copy.write(raw)
                copy.flush()
                self._take(raw)

    def _take(self, raw):
        t = time.monotonic()  # receipt time: what the rollback latency is measured from
        line = raw.decode(errors="replace").strip()
        if not line:
            return
        try:
            ev = json.loads(line)
        except ValueError:
            ev = {"kind": "text", "text": line}
        ev["_t"] = t
        self.events.append(ev)
        if self.on_event:
            self.on_event(ev)

    def _sample(self):
        """gray's own CPU time and peak RSS (without the ssh clients it starts), from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        pid = self.proc.pid
        while self.proc.returncode() is None:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] == "Z":
                    break
                self.samples["cpu_self_s"] = (int(fields[11]) + int(fields[12])) / tick
                with open(f"/proc/{pid}/status") as f:
                    m = re.search(r"VmHWM:\s+(\d+)", f.read())
                if m:
                    self.samples["peak_rss_kb"] = int(m.group(1))
            except (OSError, IndexError, ValueError):
                break
            time.sleep(0.1)

    def wait(self, timeout):
        code = self.proc.wait(timeout)
        if code is None:
            return None
        self.reader.join(timeout=5)
        self.sampler.join(timeout=2)
        self.proc.stop()
        return code

    def kill(self):
        self.proc.send(signal.SIGKILL)
        self.proc.wait(10)
        self.reader.join(timeout=5)
        self.sampler.join(timeout=2)
        self.proc.stop()

    def figures(self):
        r = self.proc.rusage
        return {
            "exit_code": self.proc.returncode(),
            "wall_s": round(time.monotonic() - self.started, 2),
            "cpu_s": round(self.samples["cpu_self_s"], 3),
            "peak_rss_kb": self.samples["peak_rss_kb"],
            # wait4's figures include the children gray waited for (ssh clients, shells).
            "cpu_with_children_s": round(r.ru_utime + r.ru_stime, 3) if r else None,
            "maxrss_with_children_kb": r.ru_maxrss if r else None,
        }

    def outcome(self):
        for ev in reversed(self.events):
            if ev.get("kind") == "outcome":
                return ev.get("data", {}).get("outcome") or ev.get("text", "")
        return None


def read_journal(path):
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    records.append({"t": "torn", "raw": line[:200]})
    return records
