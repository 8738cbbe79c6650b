"""Demo traffic: a simulated web shop sending realistic traces through the real OTLP path.

``spanlake serve --demo`` runs a :class:`DemoTraffic` against the server's own OTLP/gRPC port;
``python -m spanlake.demo --endpoint localhost:4317 --rate 5`` runs it standalone.

Each service of the shop described in :mod:`spanlake.demo_topology` is its own OpenTelemetry
resource with its own ``TracerProvider``, ``BatchSpanProcessor`` and OTLP gRPC exporter, so the
server receives exactly what instrumented applications would send. A request is first
*planned*: a walker follows the topology from an entry operation and decides, with a seeded
``random.Random``, which branches run, what fails and how long everything takes, on a simulated
clock. The plan is then *emitted* as SDK spans with explicit start and end times, anchored so
that the request ends now: 800 ms of simulated latency take no wall-clock time.
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, Tracer

from spanlake.demo_topology import (
    INGRESS_IP, KAFKA, OPERATIONS, POSTGRES, PUBLIC_HOST, REDIS, SCENARIOS, SERVICES,
    Cache, Call, External, Fault, Latency, Operation, Parallel, Peer, Publish, Query, Service,
    Step, Work, legacy_attributes, new_request,
)

log = logging.getLogger(__name__)

_MS = 1_000_000
_ENTRIES = list(SCENARIOS)
_WEIGHTS = list(SCENARIOS.values())
_HTTP_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
_GRPC_CODES = {0: "OK", 2: "UNKNOWN", 4: "DEADLINE_EXCEEDED", 13: "INTERNAL", 14: "UNAVAILABLE"}
_PUBLISH_LATENCY = Latency(1.2, 0.4)

# Instrumentation scopes, as the contrib instrumentations would report them.
_INSTRUMENTATION_VERSION = "0.66b1"
_SCOPE_HTTP_SERVER = "opentelemetry.instrumentation.fastapi"
_SCOPE_HTTP_CLIENT = "opentelemetry.instrumentation.httpx"
_SCOPE_GRPC = "opentelemetry.instrumentation.grpc"
_SCOPE_POSTGRES = "opentelemetry.instrumentation.psycopg"
_SCOPE_REDIS = "opentelemetry.instrumentation.redis"
_SCOPE_KAFKA = "opentelemetry.instrumentation.confluent_kafka"
_SCOPE_APP = "shop"


@dataclass
class SpanPlan:
    """One span to emit. ``start``/``end`` are nanoseconds from the start of the request."""

    service: str
    scope: str
    name: str
    kind: SpanKind
    start: int
    end: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[SpanPlan] = field(default_factory=list)
    fault: Fault | None = None  # ERROR status
    record: bool = True  # record the fault as an exception event
    status: int | None = None  # HTTP status or gRPC code answered by a server span
    link: SpanPlan | None = None  # the producer span a consumer span links to
    context: SpanContext | None = None  # set once emitted

    def child(self, scope: str, name: str, kind: SpanKind, start: int,
              attributes: dict[str, Any]) -> SpanPlan:
        span = SpanPlan(self.service, scope, name, kind, start, attributes=attributes)
        self.children.append(span)
        return span


class _Planner:
    """Walks the topology for one request at a time and returns span plans (no SDK calls)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._offset = rng.randrange(1_000_000)  # Kafka offset of the next message
        self._request: dict[str, Any] = {}
        self._followers: list[SpanPlan] = []
        self._handlers: dict[type, Callable[[Any, SpanPlan, int], tuple[int, Fault | None]]] = {
            Call: self._call, Query: self._query, Cache: self._cache, External: self._external,
            Publish: self._publish, Work: self._work, Parallel: self._parallel,
        }

    def plan(self) -> list[SpanPlan]:
        """Plans one request: the root of its trace, then the roots of the consumer traces."""
        entry = self.rng.choices(_ENTRIES, _WEIGHTS)[0]
        self._request = new_request(self.rng)
        self._followers = []
        root = self._serve(OPERATIONS[entry], 0, caller=None)
        return [root, *self._followers]

    # -- operations ------------------------------------------------------------------------

    def _serve(self, op: Operation, start: int, caller: Service | None,
               producer: SpanPlan | None = None) -> SpanPlan:
        svc = SERVICES[op.service]
        if producer is not None:
            span = SpanPlan(svc.name, _SCOPE_KAFKA, f"process {op.name}", SpanKind.CONSUMER, start,
                            attributes=self._consumer_attributes(svc, producer), link=producer)
        else:
            scope = _SCOPE_GRPC if op.protocol == "grpc" else _SCOPE_HTTP_SERVER
            span = SpanPlan(svc.name, scope, op.name, SpanKind.SERVER, start,
                            attributes=self._server_attributes(op, svc, caller))
        span.attributes.update({k: self._fill(v) for k, v in op.attributes.items()})
        own = op.self_time.sample_ns(self.rng)
        before = int(own * self.rng.uniform(0.3, 0.7))
        end, fault = self._steps(op.steps, span, start + before)
        span.end = end + own - before
        span.fault = fault
        if fault is not None:
            span.attributes["error.type"] = fault.exception
        if op.protocol == "http":
            ok = 201 if op.name.startswith("POST") else 200
            span.status = (op.error_status or 500) if fault else ok
            span.attributes["http.response.status_code"] = span.status
        elif op.protocol == "grpc":
            span.status = (op.error_status or 2) if fault else 0
            span.attributes["rpc.grpc.status_code"] = span.status
        return span

    def _server_attributes(self, op: Operation, svc: Service, caller: Service | None) -> dict:
        attrs = _protocol_attributes(op)
        if op.protocol == "http":
            route = op.name.split(" ", 1)[1]
            attrs.update({"http.route": route, "url.path": self._fill(route),
                          "url.scheme": "http" if caller else "https",
                          "network.protocol.version": "1.1",
                          "user_agent.original": caller.user_agent if caller
                          else self._request["user_agent"]})
        if caller is None:  # the public entry point, behind the ingress proxy
            attrs.update({"server.address": PUBLIC_HOST, "server.port": 443,
                          "network.peer.address": INGRESS_IP,
                          "client.address": self._request["client_ip"]})
        else:
            attrs.update({"server.address": svc.name, "server.port": svc.port,
                          "network.peer.address": caller.ip})
        return attrs

    def _consumer_attributes(self, svc: Service, producer: SpanPlan) -> dict:
        attrs = {k: v for k, v in producer.attributes.items()
                 if k.startswith("messaging.") or k in ("server.address", "server.port")}
        attrs.update({"messaging.operation": "process", "messaging.operation.type": "process",
                      "messaging.consumer.group.name": svc.name})
        return attrs

    # -- steps -----------------------------------------------------------------------------

    def _step(self, step: Step, parent: SpanPlan, t: int) -> tuple[int, Fault | None] | None:
        """Runs one step from ``t``: None if it does not happen, else its end time and the
        failure that propagates to the caller, if any."""
        if step.p < 1 and self.rng.random() >= step.p:
            return None
        end, fault = self._handlers[type(step)](step, parent, t)
        return end, fault if step.on_error == "propagate" else None

    def _steps(self, steps: Sequence[Step], parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        """Runs steps one after the other; a propagating failure aborts the rest."""
        for step in steps:
            if (result := self._step(step, parent, t)) is not None:
                t = result[0] + self._jitter(0.3, 0.02)
                if result[1] is not None:
                    return t, result[1]
        return t, None

    def _parallel(self, step: Parallel, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        results = [r for sub in step.steps
                   if (r := self._step(sub, parent, t + self._jitter(0.3))) is not None]
        return max([t, *(end for end, _ in results)]), next((f for _, f in results if f), None)

    def _call(self, step: Call, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        op = OPERATIONS[step.target]
        callee, caller = SERVICES[op.service], SERVICES[parent.service]
        grpc = op.protocol == "grpc"
        attrs, scope, url = _protocol_attributes(op), _SCOPE_GRPC, ""
        if not grpc:
            route = op.name.split(" ", 1)[1]
            url = f"http://{callee.name}:{callee.port}{self._fill(route)}"
            attrs.update({"url.full": url, "url.template": route})
            scope = _SCOPE_HTTP_CLIENT
        attrs.update({"server.address": callee.name, "server.port": callee.port,
                      "network.peer.address": callee.ip, "peer.service": callee.name})
        client = parent.child(scope, op.name, SpanKind.CLIENT, t, attrs)
        if self._fails(step):  # client side: the server is never reached
            assert step.fault is not None
            self._fail(client, step.fault, t, step.fault.duration or Latency(1.0))
            if grpc:
                attrs["rpc.grpc.status_code"] = step.fault.grpc_status
            return client.end, step.fault
        server = self._serve(op, t + self._jitter(0.9, 0.15), caller)
        client.children.append(server)
        client.end = server.end + self._jitter(0.9, 0.15)
        attrs["rpc.grpc.status_code" if grpc else "http.response.status_code"] = server.status
        if server.fault is None:
            return client.end, None
        if grpc:  # the gRPC client raises, so its instrumentation records the exception
            code = _GRPC_CODES.get(server.status or 2, "UNKNOWN")
            client.fault = Fault("grpc.RpcError", f"StatusCode.{code}: Exception calling "
                                 f"application: {server.fault.message}")
            attrs["error.type"] = code
        else:  # an HTTP client just gets a 5xx response; the caller's code raises
            reason = _HTTP_REASONS.get(server.status or 500, "Server Error")
            client.fault = Fault("httpx.HTTPStatusError",
                                 f"Server error '{server.status} {reason}' for url '{url}'")
            client.record = False
            attrs["error.type"] = str(server.status)
        return client.end, client.fault

    def _query(self, step: Query, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        attrs = {"db.system": "postgresql", "db.namespace": step.database,
                 "db.query.text": step.statement, "db.operation.name": step.operation,
                 "db.collection.name": step.table, **_peer(POSTGRES)}
        span, fault = self._leaf(step, parent, t, _SCOPE_POSTGRES,
                                 f"{step.operation} {step.table}", attrs, step.latency)
        if fault is not None and fault.code:
            attrs["db.response.status_code"] = fault.code
        return span.end, fault

    def _cache(self, step: Cache, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        attrs = {"db.system": "redis", "db.namespace": "0", "db.operation.name": step.command,
                 "db.query.text": f"{step.command} {self._fill(step.args)}", **_peer(REDIS)}
        span, fault = self._leaf(step, parent, t, _SCOPE_REDIS, step.command, attrs, step.latency)
        if step.on_miss:
            hit = fault is None and self.rng.random() < step.hit_rate
            attrs["app.cache.hit"] = hit
            if not hit:  # a failed read degrades to the miss path
                return self._steps(step.on_miss, parent, span.end + self._jitter(0.2))
        return span.end, fault

    def _external(self, step: External, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        attrs = {"http.request.method": step.method,
                 "url.full": f"https://{step.peer.address}{step.path}", **_peer(step.peer)}
        span, fault = self._leaf(step, parent, t, _SCOPE_HTTP_CLIENT, step.method, attrs,
                                 step.latency)
        if fault is None:
            attrs["http.response.status_code"] = 200
        return span.end, fault

    def _publish(self, step: Publish, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        self._offset += 1
        attrs = {"messaging.system": "kafka", "messaging.destination.name": step.topic,
                 "messaging.operation": "publish", "messaging.operation.type": "send",
                 "messaging.message.id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                 "messaging.kafka.message.key": self._request["order_id"],
                 "messaging.destination.partition.id": str(self.rng.randrange(12)),
                 "messaging.kafka.offset": self._offset, **_peer(KAFKA)}
        span, fault = self._leaf(step, parent, t, _SCOPE_KAFKA, f"publish {step.topic}", attrs,
                                 _PUBLISH_LATENCY, SpanKind.PRODUCER)
        if fault is None:
            for consumer in step.consumers:
                start = t + step.lag.sample_ns(self.rng)
                self._followers.append(self._serve(OPERATIONS[consumer], start, None, span))
        return span.end, fault

    def _work(self, step: Work, parent: SpanPlan, t: int) -> tuple[int, Fault | None]:
        span = parent.child(_SCOPE_APP, step.name, SpanKind.INTERNAL, t, {})
        own = step.latency.sample_ns(self.rng)
        end, span.fault = self._steps(step.steps, span, t + own // 2)
        span.end = end + own - own // 2
        return span.end, span.fault

    # -- helpers ---------------------------------------------------------------------------

    def _leaf(self, step: Step, parent: SpanPlan, t: int, scope: str, name: str,
              attrs: dict[str, Any], latency: Latency,
              kind: SpanKind = SpanKind.CLIENT) -> tuple[SpanPlan, Fault | None]:
        span = parent.child(scope, name, kind, t, attrs)
        if self._fails(step):
            assert step.fault is not None
            self._fail(span, step.fault, t, latency)
        else:
            span.end = t + latency.sample_ns(self.rng)
        return span, span.fault

    def _fail(self, span: SpanPlan, fault: Fault, t: int, latency: Latency) -> None:
        span.fault = fault
        span.end = t + (fault.duration or latency).sample_ns(self.rng)
        span.attributes["error.type"] = fault.exception

    def _fails(self, step: Step) -> bool:
        return step.fail > 0 and self.rng.random() < step.fail

    def _jitter(self, high_ms: float, low_ms: float = 0.0) -> int:
        return int(self.rng.uniform(low_ms, high_ms) * _MS)

    def _fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._request[value[1:]] if value.startswith("$") else value.format(
                **self._request)
        return value


def _protocol_attributes(op: Operation) -> dict[str, Any]:
    if op.protocol == "grpc":
        service, method = op.name.split("/")
        return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
    return {"http.request.method": op.name.split(" ", 1)[0]}


def _peer(peer: Peer) -> dict[str, Any]:
    return {"server.address": peer.address, "server.port": peer.port,
            "network.peer.address": peer.ip, "peer.service": peer.name}


def _provider(svc: Service, endpoint: str, insecure: bool, rng: random.Random) -> TracerProvider:
    pod = f"{svc.name}-{rng.getrandbits(40):010x}-{rng.getrandbits(20):05x}"
    resource = Resource.create({
        "service.name": svc.name, "service.version": svc.version, "service.namespace": "shop",
        "service.instance.id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "deployment.environment.name": "demo",
        "host.name": pod, "host.id": f"{rng.getrandbits(128):032x}",
        "k8s.namespace.name": "shop", "k8s.deployment.name": svc.name, "k8s.pod.name": pod,
    })
    # An explicit sampler: OTEL_TRACES_SAMPLER from the environment must not thin out the demo.
    provider = TracerProvider(sampler=ALWAYS_ON, resource=resource, shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=insecure)
    provider.add_span_processor(BatchSpanProcessor(
        exporter, max_queue_size=20_000, schedule_delay_millis=500, max_export_batch_size=1024))
    return provider


class DemoTraffic:
    """Generates web-shop traces and sends them over OTLP/gRPC to ``endpoint``.

    ``start()`` sends about ``rate`` requests per second (Poisson arrivals) from a background
    thread until ``stop()``; ``run_for(n)`` sends exactly ``n`` requests synchronously. One
    request yields 10-40 spans, in its own trace plus the consumer traces it triggers.
    """

    def __init__(self, endpoint: str, rate: float = 5.0, seed: int | None = None,
                 insecure: bool = True) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.endpoint = endpoint
        self.rate = rate
        rng = random.Random(seed)
        self._planner = _Planner(random.Random(rng.getrandbits(64)))
        self._arrivals = random.Random(rng.getrandbits(64))
        self._providers = [_provider(svc, endpoint, insecure, rng) for svc in SERVICES.values()]
        self._by_service = {p.resource.attributes["service.name"]: p for p in self._providers}
        self._tracers: dict[tuple[str, str], Tracer] = {}
        self._lock = threading.Lock()  # one request at a time (planner, counters)
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._requests = self._spans = self._traces = self._failed = 0

    @property
    def requests_sent(self) -> int:
        return self._requests

    @property
    def spans_created(self) -> int:
        return self._spans

    @property
    def traces_created(self) -> int:
        """Request traces plus the consumer traces they triggered."""
        return self._traces

    @property
    def failed_requests(self) -> int:
        return self._failed

    def start(self) -> None:
        """Starts sending in a background thread (no-op if already running)."""
        with self._state_lock:
            if self._closed:
                raise RuntimeError("DemoTraffic was stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="spanlake-demo",
                                                daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stops the background thread, flushes and shuts down the providers. Idempotent."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:  # let a request in progress in run_for() finish
            pass
        self._each_provider(lambda p: p.shutdown())

    def run_for(self, requests: int) -> None:
        """Sends exactly ``requests`` requests now, then flushes every provider."""
        if self._closed:
            raise RuntimeError("DemoTraffic was stopped")
        for _ in range(requests):
            if self._stopping.is_set():
                break
            self._generate()
        self._each_provider(lambda p: p.force_flush(30_000))

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stopping.is_set():
            try:
                self._generate()
            except Exception:  # keep the demo going; a broken request must not end it
                log.exception("demo traffic: generating a request failed")
            # Never try to catch up on more than a second of backlog.
            next_at = max(next_at + self._arrivals.expovariate(self.rate), time.monotonic() - 1)
            self._stopping.wait(max(0.0, next_at - time.monotonic()))

    def _generate(self) -> None:
        with self._lock:
            roots = self._planner.plan()
            anchor = time.time_ns() - max(root.end for root in roots)
            spans = sum(self._emit(root, Context(), anchor) for root in roots)
            self._requests += 1
            self._spans += spans
            self._traces += len(roots)
            self._failed += roots[0].fault is not None

    def _emit(self, plan: SpanPlan, parent: Context, anchor: int) -> int:
        tracer = self._tracers.get((plan.service, plan.scope))
        if tracer is None:
            tracer = self._by_service[plan.service].get_tracer(plan.scope, _INSTRUMENTATION_VERSION)
            self._tracers[plan.service, plan.scope] = tracer
        attributes = plan.attributes
        if SERVICES[plan.service].legacy_semconv:
            attributes = legacy_attributes(attributes, server=plan.kind is SpanKind.SERVER)
        links = [Link(plan.link.context)] if plan.link and plan.link.context else []
        span = tracer.start_span(plan.name, parent, plan.kind, attributes, links,
                                 start_time=anchor + plan.start)
        plan.context = span.get_span_context()
        inner = trace.set_span_in_context(span, parent)
        count = 1 + sum(self._emit(child, inner, anchor) for child in plan.children)
        description = None
        if plan.fault is not None and plan.record:
            span.record_exception(
                plan.fault.as_exception(),
                {"exception.stacktrace": plan.fault.stacktrace(plan.service, plan.name)},
                timestamp=anchor + plan.end,
                escaped=plan.kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.INTERNAL))
            description = f"{plan.fault.exception.rsplit('.', 1)[-1]}: {plan.fault.message}"
        if plan.fault is not None:
            span.set_status(Status(StatusCode.ERROR, description))
        span.end(anchor + plan.end)
        return count

    def _each_provider(self, action: Callable[[TracerProvider], Any]) -> None:
        # In parallel: against an unreachable endpoint each provider waits for its own timeout.
        with ThreadPoolExecutor(len(self._providers), "spanlake-demo-flush") as pool:
            list(pool.map(action, self._providers))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spanlake.demo``: send demo traffic until interrupted (or ``--requests``)."""
    parser = argparse.ArgumentParser(
        prog="python -m spanlake.demo",
        description="Send simulated web-shop traces to an OTLP/gRPC endpoint.")
    parser.add_argument("--endpoint", default="localhost:4317",
                        help="OTLP/gRPC endpoint, host:port (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=5.0,
                        help="requests per second (default: %(default)s)")
    parser.add_argument("--seed", type=int, help="random seed, for a reproducible request mix")
    parser.add_argument("--requests", type=int, help="send exactly N requests, then exit")
    parser.add_argument("--tls", action="store_true", help="use TLS (default: plaintext)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    demo = DemoTraffic(args.endpoint, args.rate, args.seed, insecure=not args.tls)
    try:
        if args.requests is not None:
            demo.run_for(args.requests)
        else:
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            demo.start()
            log.info("sending demo traffic to %s at %.1f requests/s; Ctrl-C to stop",
                     args.endpoint, args.rate)
            try:
                while not done.wait(10):
                    log.info("%d requests, %d spans sent", demo.requests_sent,
                             demo.spans_created)
            except KeyboardInterrupt:
                pass
    finally:
        demo.stop()
    log.info("done: %d requests (%d failed), %d spans in %d traces", demo.requests_sent,
             demo.failed_requests, demo.spans_created, demo.traces_created)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
