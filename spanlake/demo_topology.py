"""The demo shop that :mod:`spanlake.demo` simulates, described as data.

Nine instrumented services of a web shop (namespace ``shop``) call each other over HTTP and
gRPC, use PostgreSQL and Redis, and hand orders to two Kafka consumers::

    web-frontend -> api-gateway -> auth-service (gRPC) -> redis / postgres
                                -> catalog-service     -> redis / postgres
                                -> cart-service        -> redis
                                -> checkout-service    -> cart-service, catalog-service
                                                       -> payment-service (gRPC)
                                                          -> postgres, payments API
                                                       -> postgres, kafka "order-events"
    kafka "order-events" -> shipping-worker     -> postgres, carrier API
                         -> notification-worker -> redis, postgres, e-mail API

An :class:`Operation` is what a service does when it receives a request (or a message): its
own processing time and a sequence of :data:`Step` s. The walker in :mod:`spanlake.demo` turns
an entry operation into span trees. Templates in paths, keys and attribute values are filled
from the per-request context built by :func:`new_request`; an attribute value ``"$name"`` takes
the context value as is (keeping its type), any other string is ``str.format``-ed with it.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Union


@dataclass(frozen=True)
class Latency:
    """A log-normal duration around ``median_ms``; with probability ``slow_p`` a slow path
    adds ``slow_ms`` (uniform range) on top, which is what makes the latency tail."""

    median_ms: float
    sigma: float = 0.35
    slow_p: float = 0.0
    slow_ms: tuple[float, float] = (0.0, 0.0)

    def sample_ns(self, rng: random.Random) -> int:
        ms = rng.lognormvariate(math.log(self.median_ms), self.sigma)
        if self.slow_p and rng.random() < self.slow_p:
            ms += rng.uniform(*self.slow_ms)
        return int(ms * 1_000_000)


@dataclass(frozen=True)
class Fault:
    """An injected failure: the exception the calling code sees (``exception`` is
    ``module.Class``), optionally taking a fixed time such as a timeout."""

    exception: str
    message: str
    duration: Latency | None = None
    code: str | None = None  # db.response.status_code or the gRPC status name
    grpc_status: int = 2  # UNKNOWN

    def as_exception(self) -> Exception:
        """An exception whose type reports as ``module.Class`` in ``exception.type``."""
        cls = _EXCEPTION_TYPES.get(self.exception)
        if cls is None:
            module, _, name = self.exception.rpartition(".")
            cls = type(name, (Exception,), {"__module__": module})
            _EXCEPTION_TYPES[self.exception] = cls
        return cls(self.message)

    def stacktrace(self, service: str, handler: str) -> str:
        """A plausible Python traceback (the exception is never actually raised)."""
        function = re.sub(r"\W+", "_", handler.lower()).strip("_")
        line = 40 + zlib.crc32(handler.encode()) % 300
        package, library = service.replace("-", "_"), self.exception.split(".")[0]
        return ("Traceback (most recent call last):\n"
                f'  File "/app/{package}/handlers.py", line {line}, in {function}\n'
                f"    return await self._{function}(req)\n"
                f'  File "/usr/local/lib/python3.11/site-packages/{library}/_core.py", line 211, '
                f"in execute\n    raise exc\n{self.exception}: {self.message}\n")


_EXCEPTION_TYPES: dict[str, type[Exception]] = {}


@dataclass(frozen=True)
class Service:
    """An instrumented service: one OTel resource, one TracerProvider."""

    name: str
    version: str
    ip: str
    port: int = 8080
    user_agent: str = "python-httpx/0.27.2"  # of its outgoing HTTP client
    legacy_semconv: bool = False  # emits pre-1.21 attribute names (http.method, db.statement...)


@dataclass(frozen=True)
class Peer:
    """Something called but not instrumented: a database, a broker, a third-party API."""

    name: str  # peer.service
    address: str
    ip: str
    port: int


POSTGRES = Peer("postgres", "postgres-primary.shop.svc.cluster.local", "10.42.7.10", 5432)
REDIS = Peer("redis", "redis-master.shop.svc.cluster.local", "10.42.7.20", 6379)
KAFKA = Peer("kafka", "kafka-0.kafka-headless.shop.svc.cluster.local", "10.42.7.30", 9092)
PAYMENTS_API = Peer("payments-provider", "api.payments-provider.example", "198.51.100.24", 443)
CARRIER_API = Peer("parcel-carrier", "api.parcel-carrier.example", "198.51.100.77", 443)
EMAIL_API = Peer("mailer", "api.mailer.example", "203.0.113.45", 443)

#: Public address of the shop and the ingress proxy that forwards to web-frontend.
PUBLIC_HOST = "shop.example.com"
INGRESS_IP = "10.42.0.5"

DB_TIMEOUT = Fault("psycopg.errors.QueryCanceled", "canceling statement due to statement timeout",
                   Latency(2000, 0.01), code="57014")
DEADLOCK = Fault("psycopg.errors.DeadlockDetected", "deadlock detected", Latency(45, 0.3),
                 code="40P01")
REDIS_TIMEOUT = Fault("redis.exceptions.TimeoutError", "Timeout reading from socket",
                      Latency(250, 0.05))
GRPC_UNAVAILABLE = Fault("grpc.RpcError", "StatusCode.UNAVAILABLE: failed to connect to all "
                         "addresses; last error: UNAVAILABLE: Connection refused",
                         Latency(2.5, 0.3), code="UNAVAILABLE", grpc_status=14)
PROVIDER_TIMEOUT = Fault("httpx.ReadTimeout", "The read operation timed out", Latency(3000, 0.01))
CARRIER_DISCONNECT = Fault("httpx.RemoteProtocolError",
                           "Server disconnected without sending a response.", Latency(900, 0.4))


# ---------------------------------------------------------------------------------------------
# Steps. `p` is the probability the step happens at all; `fail` the probability it fails with
# `fault`; `on_error` whether a failure aborts the calling operation ("propagate") or is
# tolerated ("ignore").
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Step:
    p: float = 1.0
    fail: float = 0.0
    fault: Fault | None = None
    on_error: str = "propagate"


@dataclass(frozen=True)
class Call(_Step):
    """A call to another service's operation (a CLIENT span with the SERVER span under it).
    A failure here is client side: the server is never reached."""

    target: str
    fault: Fault | None = field(default=GRPC_UNAVAILABLE, kw_only=True)


@dataclass(frozen=True)
class Query(_Step):
    """A PostgreSQL statement."""

    database: str
    statement: str
    latency: Latency = Latency(1.5)
    fail: float = field(default=0.0035, kw_only=True)
    fault: Fault | None = field(default=DB_TIMEOUT, kw_only=True)

    @property
    def operation(self) -> str:
        return self.statement.split(None, 1)[0].upper()

    @property
    def table(self) -> str:
        """db.collection.name: the first table the statement reads or writes."""
        keyword = {"INSERT": "INTO", "UPDATE": "UPDATE"}.get(self.operation, "FROM")
        words = self.statement.replace("(", " ").replace(",", " ").split()
        return words[words.index(keyword) + 1] if keyword in words else ""


@dataclass(frozen=True)
class Cache(_Step):
    """A Redis command. On a miss (probability ``1 - hit_rate``) the ``on_miss`` steps run; a
    failed command that has an ``on_miss`` path degrades to it instead of failing."""

    command: str
    args: str  # key and (obfuscated) arguments, e.g. "product:{product_id} 300 ?"
    latency: Latency = Latency(0.35, 0.3)
    hit_rate: float = 1.0
    on_miss: tuple[Step, ...] = ()
    fail: float = field(default=0.004, kw_only=True)
    fault: Fault | None = field(default=REDIS_TIMEOUT, kw_only=True)


@dataclass(frozen=True)
class External(_Step):
    """An HTTPS call to a third-party API (a CLIENT span without a server side)."""

    peer: Peer
    method: str
    path: str
    latency: Latency


@dataclass(frozen=True)
class Publish(_Step):
    """A Kafka send (PRODUCER span); every consumer operation processes the message in a new
    trace, linked to the producer span, after a queueing lag."""

    topic: str
    consumers: tuple[str, ...]
    lag: Latency = Latency(25, 0.6)


@dataclass(frozen=True)
class Work(_Step):
    """An INTERNAL span of in-process work, optionally wrapping further steps."""

    name: str
    latency: Latency
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Parallel(_Step):
    """Steps started concurrently; the caller continues when the slowest finishes."""

    steps: tuple[Step, ...]


Step = Union[Call, Query, Cache, External, Publish, Work, Parallel]


@dataclass(frozen=True)
class Operation:
    """What a service does on an inbound request or message.

    ``name`` is ``"METHOD /route"`` for HTTP, ``"package.Service/Method"`` for gRPC and the
    topic for Kafka consumers.
    """

    service: str
    protocol: str  # "http" | "grpc" | "kafka"
    name: str
    steps: tuple[Step, ...] = ()
    self_time: Latency = Latency(1.2)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    error_status: int | None = None  # HTTP status on failure; default 500 (gRPC: INTERNAL)


SERVICES: dict[str, Service] = {s.name: s for s in (
    Service("web-frontend", "3.8.2", "10.42.1.15"),
    Service("api-gateway", "1.21.0", "10.42.1.31"),
    Service("auth-service", "2.3.1", "10.42.2.12", 50051, legacy_semconv=True),
    Service("catalog-service", "4.2.0", "10.42.2.40", user_agent="aiohttp/3.9.5"),
    Service("cart-service", "1.9.3", "10.42.3.7"),
    Service("checkout-service", "2.0.5", "10.42.3.22"),
    Service("payment-service", "1.4.2", "10.42.4.9", 50051),
    Service("shipping-worker", "0.9.1", "10.42.5.3", user_agent="python-requests/2.32.3",
            legacy_semconv=True),
    Service("notification-worker", "1.1.0", "10.42.5.18"),
)}

AUTH = Call("auth.verify", fail=0.004)


def _render(name: str) -> Work:
    return Work(f"render {name}", Latency(3.5, 0.5))


def _cached_select(key: str, database: str, statement: str, hit_rate: float,
                   latency: Latency) -> Cache:
    """The read-through cache pattern: GET, on a miss query and SETEX."""
    return Cache("GET", key, hit_rate=hit_rate, on_miss=(
        Query(database, statement, latency),
        Cache("SETEX", f"{key} 300 ?", on_error="ignore"),
    ))


OPERATIONS: dict[str, Operation] = {
    # web-frontend: server-side rendered pages
    "frontend.product": Operation(
        "web-frontend", "http", "GET /products/{product_id}",
        (Call("gateway.product"), _render("product_page")),
        attributes={"app.product.id": "{product_id}"}),
    "frontend.search": Operation(
        "web-frontend", "http", "GET /search",
        (Call("gateway.search"), _render("search_results")),
        attributes={"url.query": "q={query}"}),
    "frontend.cart": Operation(
        "web-frontend", "http", "GET /cart", (Call("gateway.cart"), _render("cart"))),
    "frontend.add_to_cart": Operation(
        "web-frontend", "http", "POST /cart/items", (Call("gateway.add_to_cart"),),
        attributes={"app.product.id": "{product_id}", "app.product.quantity": "$quantity"}),
    "frontend.checkout": Operation(
        "web-frontend", "http", "POST /checkout",
        (Call("gateway.checkout"), _render("order_confirmation"))),
    # api-gateway: authenticates, then routes
    "gateway.product": Operation(
        "api-gateway", "http", "GET /api/v1/products/{product_id}",
        (AUTH, Call("catalog.product")), Latency(0.8), {"enduser.id": "{user_id}"}, 502),
    "gateway.search": Operation(
        "api-gateway", "http", "GET /api/v1/search",
        (AUTH, Call("catalog.search")), Latency(0.8), {"enduser.id": "{user_id}"}, 502),
    "gateway.cart": Operation(
        "api-gateway", "http", "GET /api/v1/cart",
        (AUTH, Parallel((Call("cart.get"), Call("catalog.recommendations")))),
        Latency(0.9), {"enduser.id": "{user_id}"}, 502),
    "gateway.add_to_cart": Operation(
        "api-gateway", "http", "POST /api/v1/cart/items",
        (AUTH, Call("catalog.product"), Call("cart.add_item")),
        Latency(0.9), {"enduser.id": "{user_id}"}, 502),
    "gateway.checkout": Operation(
        "api-gateway", "http", "POST /api/v1/checkout",
        (AUTH, Call("checkout.place_order")), Latency(1.0), {"enduser.id": "{user_id}"}, 502),
    # auth-service (gRPC)
    "auth.verify": Operation(
        "auth-service", "grpc", "auth.v1.AuthService/VerifyToken",
        (_cached_select("session:{session_id}", "auth",
                        "SELECT user_id, scopes, expires_at FROM sessions WHERE token_hash = $1",
                        0.95, Latency(1.2)),),
        Latency(0.6), {"enduser.id": "{user_id}"}),
    # catalog-service
    "catalog.product": Operation(
        "catalog-service", "http", "GET /products/{product_id}",
        (_cached_select("product:{product_id}", "catalog",
                        "SELECT id, sku, name, description, price_cents, currency FROM products "
                        "WHERE id = $1",
                        # a cold miss sometimes reads pages from disk: the catalog's slow path
                        0.9, Latency(2.0, 0.4, slow_p=0.25, slow_ms=(150, 600))),
         Parallel((
             Query("catalog", "SELECT available, reserved FROM inventory WHERE product_id = $1"),
             Query("catalog", "SELECT related_id FROM product_relations WHERE product_id = $1 "
                              "ORDER BY score DESC LIMIT $2", Latency(2.5)),
         ))),
        Latency(1.5), {"app.product.id": "{product_id}"}),
    "catalog.search": Operation(
        "catalog-service", "http", "GET /search",
        (_cached_select("search:{query_hash}", "catalog",
                        "SELECT id, name, ts_rank(search_vector, query) AS rank FROM products, "
                        "plainto_tsquery($1) query WHERE search_vector @@ query "
                        "ORDER BY rank DESC LIMIT 24",
                        0.4, Latency(14, 0.5, slow_p=0.03, slow_ms=(100, 400))),),
        Latency(2.0), {"app.search.query": "{query}"}),
    "catalog.recommendations": Operation(
        "catalog-service", "http", "GET /recommendations",
        (_cached_select("recs:{user_id}", "catalog",
                        "SELECT p.id, p.name FROM order_items oi JOIN products p ON "
                        "p.id = oi.product_id WHERE oi.customer_id = $1 GROUP BY p.id LIMIT 8",
                        0.7, Latency(9, 0.5)),),
        Latency(1.5), {"enduser.id": "{user_id}"}),
    "catalog.reserve": Operation(
        "catalog-service", "http", "POST /inventory/reservations",
        (Query("catalog", "UPDATE inventory SET reserved = reserved + $2 "
                          "WHERE product_id = ANY($1) AND available - reserved >= $2",
               Latency(3.0), fault=DEADLOCK),),
        Latency(1.0), {"app.order.id": "{order_id}", "app.cart.items_count": "$items"}),
    # cart-service: carts live in Redis only, so a Redis failure fails the request
    "cart.get": Operation(
        "cart-service", "http", "GET /carts/{user_id}",
        (Cache("HGETALL", "cart:{user_id}"),), Latency(0.7), {"app.cart.items_count": "$items"}),
    "cart.add_item": Operation(
        "cart-service", "http", "POST /carts/{user_id}/items",
        (Cache("HINCRBY", "cart:{user_id} {product_id} ?"),
         Cache("EXPIRE", "cart:{user_id} 2592000", on_error="ignore")),
        Latency(0.7), {"app.product.id": "{product_id}"}),
    "cart.clear": Operation(
        "cart-service", "http", "DELETE /carts/{user_id}",
        (Cache("DEL", "cart:{user_id}"),), Latency(0.5)),
    # checkout-service
    "checkout.place_order": Operation(
        "checkout-service", "http", "POST /orders",
        (Call("cart.get"),
         Parallel((Call("catalog.reserve"), Work("compute order totals", Latency(1.5)))),
         Call("payment.charge", fail=0.002),
         Query("orders", "INSERT INTO orders (id, customer_id, total_cents, currency, status) "
                         "VALUES ($1, $2, $3, $4, 'paid')", Latency(2.5)),
         Query("orders", "INSERT INTO order_items (order_id, product_id, quantity, price_cents) "
                         "SELECT * FROM unnest($1, $2, $3, $4)", Latency(3.0)),
         Publish("order-events", ("shipping.order_events", "notification.order_events")),
         Call("cart.clear", on_error="ignore")),  # the order is placed already
        Latency(2.5),
        {"app.order.id": "{order_id}", "app.customer.id": "{user_id}",
         "app.cart.items_count": "$items"}),
    # payment-service (gRPC); ~3% of charges hit a slow payment provider
    "payment.charge": Operation(
        "payment-service", "grpc", "payment.v1.PaymentService/Charge",
        (Query("payments", "SELECT id, provider_token FROM payment_methods WHERE customer_id = $1 "
                           "AND is_default"),
         External(PAYMENTS_API, "POST", "/v1/charges",
                  Latency(180, 0.3, slow_p=0.03, slow_ms=(400, 1500)),
                  fail=0.04, fault=PROVIDER_TIMEOUT),
         Query("payments", "INSERT INTO payments (order_id, customer_id, amount_cents, currency, "
                           "provider_ref) VALUES ($1, $2, $3, $4, $5)", Latency(2.0))),
        Latency(1.5),
        {"app.order.id": "{order_id}", "app.customer.id": "{user_id}",
         "app.payment.amount": "$amount", "app.payment.currency": "{currency}"}),
    # Kafka consumers of order-events
    "shipping.order_events": Operation(
        "shipping-worker", "kafka", "order-events",
        (Work("create shipment", Latency(0.8), (
            Query("orders", "SELECT address_line1, postal_code, country FROM addresses "
                            "WHERE customer_id = $1 AND is_default"),
            External(CARRIER_API, "POST", "/v2/shipments", Latency(140, 0.4),
                     fail=0.035, fault=CARRIER_DISCONNECT),
            Query("orders", "INSERT INTO shipments (order_id, carrier, tracking_number) "
                            "VALUES ($1, $2, $3)"),
         )),),
        Latency(0.8), {"app.order.id": "{order_id}"}),
    "notification.order_events": Operation(
        "notification-worker", "kafka", "order-events",
        (Cache("SET", "notified:{order_id} ? NX EX 86400"),  # idempotency key
         Query("orders", "SELECT email, locale FROM customers WHERE id = $1"),
         Work("render order_confirmation_email", Latency(2.0)),
         External(EMAIL_API, "POST", "/v3/mail/send", Latency(70, 0.4))),
        Latency(0.8), {"app.order.id": "{order_id}", "app.customer.id": "{user_id}"}),
}

#: Entry points (web-frontend operations) with their share of the traffic.
SCENARIOS: dict[str, float] = {
    "frontend.product": 40, "frontend.search": 12, "frontend.cart": 18,
    "frontend.add_to_cart": 15, "frontend.checkout": 15,
}

#: Stable attribute name -> the name older instrumentations use (``legacy_semconv`` services).
#: ``server.*`` keys depend on the span kind: see :func:`legacy_attributes`.
LEGACY_KEYS: dict[str, str] = {
    "http.request.method": "http.method",
    "http.response.status_code": "http.status_code",
    "url.full": "http.url",
    "url.path": "http.target",
    "url.scheme": "http.scheme",
    "user_agent.original": "http.user_agent",
    "network.peer.address": "net.sock.peer.addr",
    "client.address": "http.client_ip",
    "db.namespace": "db.name",
    "db.query.text": "db.statement",
    "db.operation.name": "db.operation",
    "db.collection.name": "db.sql.table",
    "messaging.consumer.group.name": "messaging.kafka.consumer.group",
    "messaging.destination.partition.id": "messaging.kafka.destination.partition",
}



def legacy_attributes(attributes: Mapping[str, Any], server: bool) -> dict[str, Any]:
    """Renames stable attribute keys to the names of the older conventions."""
    prefix = "net.host." if server else "net.peer."
    names = {**LEGACY_KEYS, "server.address": prefix + "name", "server.port": prefix + "port"}
    return {names.get(key, key): value for key, value in attributes.items()}


_PRODUCTS = [f"P{n:05d}" for n in range(1, 401)]
_POPULARITY = [1 / rank for rank in range(1, 401)]  # Zipf-like: a few best sellers
_TERMS = ["running shoes", "rain jacket", "coffee grinder", "usb-c cable", "desk lamp",
          "yoga mat", "headphones", "backpack", "water bottle", "mechanical keyboard"]
_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
]


def new_request(rng: random.Random) -> dict[str, Any]:
    """The per-request context: who is shopping for what."""
    query = rng.choice(_TERMS)
    items = rng.randint(1, 6)
    return {
        "user_id": f"u-{rng.randint(10_000, 99_999)}",
        "session_id": f"{rng.getrandbits(64):016x}",
        "product_id": rng.choices(_PRODUCTS, _POPULARITY)[0],
        "quantity": rng.randint(1, 3),
        "items": items,
        "query": query,
        "query_hash": f"{zlib.crc32(query.encode()):08x}",
        "order_id": f"ord-{rng.getrandbits(40):010x}",
        "amount": round(items * rng.uniform(8, 120), 2),
        "currency": rng.choice(["USD", "USD", "EUR", "GBP"]),
        "client_ip": f"{rng.choice(['203.0.113', '198.51.100', '192.0.2'])}.{rng.randint(1, 254)}",
        "user_agent": rng.choice(_USER_AGENTS),
    }
