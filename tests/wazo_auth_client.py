#!/usr/bin/env python3
"""Drives a running Tessera exactly as wazo-auth-client (Python) does (wazo-contract §5.1).

Standard library only. `Client` below reimplements the wire behaviour of
`wazo_auth_client.Client(host, port=..., prefix=None, https=False)` on top of
`wazo_lib_rest_client`: the same URLs, headers, bodies, query strings and status handling.
Every response is kept in `client.last_response` and every request in `client.last_request`,
so the scenario can also look at what travelled on the wire (e.g. `Wazo-Sessions-Revoked`).

The scenario at the bottom is run by `tests/api/wazo_python.rs` against a server it started
and populated. Exit status 0 means every expectation held; 1 prints the one that did not.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import http.client
import json
import os
import re
import sys
import traceback
import urllib.parse
import uuid
import zlib
from datetime import datetime, timedelta, timezone

# --------------------------------------------------------------------------------------------
# The client: wazo_auth_client + wazo_lib_rest_client, minus `requests`.
# --------------------------------------------------------------------------------------------


class HTTPError(Exception):
    """`requests.HTTPError` as `raise_from_response` raises it (reason from a JSON `message`)."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.status = response.status
        reason = response.reason
        body = response.json_or_none()
        if isinstance(body, dict) and 'message' in body:
            reason = body['message']
        self.reason = reason
        super().__init__(
            f'{response.status} {reason} for {response.method} {response.url}: '
            f'{response.text()!r}'
        )


# Both subclass BaseException upstream (wazo_auth_client/exceptions.py), not Exception.
class InvalidTokenException(BaseException):
    pass


class MissingPermissionsTokenException(BaseException):
    pass


class Response:
    def __init__(self, method, url, status, reason, headers, body):
        self.method = method
        self.url = url
        self.status = status
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = body

    def text(self) -> str:
        return self.content.decode('utf-8', errors='replace')

    def json(self):
        return json.loads(self.content.decode('utf-8'))

    def json_or_none(self):
        try:
            return self.json()
        except ValueError:
            return None


class Request:
    """What was sent: method, full URL, path with query, headers (in order) and body bytes."""

    def __init__(self, method, url, target, headers, body):
        self.method = method
        self.url = url
        self.target = target
        self.headers = headers
        self.body = body

    def header(self, name: str):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def query(self) -> str:
        return urllib.parse.urlsplit(self.target).query


_NO_BODY = object()


class Client:
    """`wazo_auth_client.Client` with the wazo_lib_rest_client `BaseClient` session rules.

    `encoding` picks how the Basic credentials are encoded: wazo-contract §5.1 says UTF-8;
    `latin-1` is what `requests.auth.HTTPBasicAuth` does with `str` values, and wazo-auth
    accepts both (§1.3).
    """

    def __init__(
        self,
        host,
        port=443,
        prefix='/api/auth',
        version='0.1',
        username=None,
        password=None,
        token=None,
        tenant=None,
        https=True,
        timeout=10,
        user_agent='',
        encoding='utf-8',
    ):
        self.host = host
        self.port = port
        self.timeout = timeout
        self._version = version
        self._token_id = token
        self._https = https
        self._prefix = '' if not prefix else ('/' + prefix.lstrip('/'))
        self._user_agent = user_agent or os.path.basename(sys.argv[0])
        self.tenant_uuid = tenant
        self.username = username
        self.password = password
        self.encoding = encoding
        self.last_request: Request | None = None
        self.last_response: Response | None = None
        self.token = TokenCommand(self)
        self.refresh_tokens = RefreshTokenCommand(self)
        self.sessions = SessionsCommand(self)
        self.users = UsersCommand(self)

    def set_token(self, token):
        self._token_id = token

    def url(self, *fragments) -> str:
        base = '{scheme}://{host}{port}{prefix}{version}'.format(
            scheme='https' if self._https else 'http',
            host=self.host,
            port=f':{self.port}' if self.port else '',
            prefix=self._prefix,
            version=f'/{self._version}' if self._version else '',
        )
        if fragments:
            base = base + '/' + '/'.join(str(f) for f in fragments)
        return base

    def basic_auth(self, username, password) -> str:
        raw = f'{username or ""}:{password or ""}'.encode(self.encoding)
        return 'Basic ' + base64.b64encode(raw).decode('ascii')

    def session_auth(self):
        """`AuthClient.session()`: the constructor's credentials, when both are set."""
        if self.username and self.password:
            return (self.username, self.password)
        return None

    def _session_headers(self):
        headers = {'Connection': 'close'}
        if self._token_id:
            headers['X-Auth-Token'] = self._token_id
        if self.tenant_uuid:
            headers['Wazo-Tenant'] = self.tenant_uuid
        if self._user_agent:
            headers['User-agent'] = self._user_agent
        return headers

    def request(self, method, url, headers=None, params=None, json_body=_NO_BODY, auth=None):
        """One `requests.Session` request: session headers merged case-insensitively with
        the request's, `params` urlencoded with str() values (None dropped), `json=` body."""
        merged: dict[str, tuple[str, str]] = {}
        base = {
            'User-Agent': 'python-requests',
            'Accept-Encoding': 'gzip, deflate',
            'Accept': '*/*',
        }
        for source in (base, self._session_headers(), headers or {}):
            for name, value in source.items():
                merged[name.lower()] = (name, value)
        body = None
        if json_body is not _NO_BODY:
            body = json.dumps(json_body).encode('utf-8')
            merged['content-type'] = ('Content-Type', 'application/json')
        if auth is not None:
            merged['authorization'] = ('Authorization', self.basic_auth(*auth))

        parts = urllib.parse.urlsplit(url)
        target = parts.path
        if params:
            kept = [(k, str(v)) for k, v in params.items() if v is not None]
            if kept:
                target += '?' + urllib.parse.urlencode(kept)
        send_headers = list(merged.values())
        self.last_request = Request(method, url, target, send_headers, body)

        conn_cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_cls(parts.hostname, parts.port, timeout=self.timeout)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in send_headers:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader('Content-Length', str(len(body)))
            elif method in ('POST', 'PUT', 'PATCH'):
                conn.putheader('Content-Length', '0')
            conn.endheaders(body)
            raw = conn.getresponse()
            content = raw.read()
            encoding = (raw.getheader('Content-Encoding') or '').lower()
            if encoding == 'gzip':
                content = gzip.decompress(content)
            elif encoding == 'deflate':
                content = zlib.decompress(content)
            response = Response(method, url, raw.status, raw.reason, raw.headers, content)
        finally:
            conn.close()
        self.last_response = response
        return response


class RESTCommand:
    resource = ''
    _headers = {'Accept': 'application/json'}

    def __init__(self, client: Client) -> None:
        self._client = client
        self.base_url = client.url(self.resource)

    def _get_headers(self, **kwargs):
        headers = dict(self._headers)
        tenant_uuid = kwargs.pop('tenant_uuid', None)
        if tenant_uuid:
            headers['Wazo-Tenant'] = str(tenant_uuid)
        return headers

    @staticmethod
    def raise_from_response(response: Response):
        raise HTTPError(response)


class TokenCommand(RESTCommand):
    resource = 'token'
    _user_agent = 'Wazo Python auth client'

    def new(
        self,
        backend=None,
        expiration=None,
        session_type=None,
        user_agent=None,
        access_type=None,
        client_id=None,
        refresh_token=None,
        username=None,
        password=None,
        tenant_id=None,
        domain_name=None,
    ):
        data = {}
        if backend:
            data['backend'] = backend
        if expiration:
            data['expiration'] = expiration
        if client_id:
            data['client_id'] = client_id
        if refresh_token:
            data['refresh_token'] = refresh_token
        if access_type:
            data['access_type'] = access_type
        if tenant_id:
            data['tenant_id'] = tenant_id
        if domain_name:
            data['domain_name'] = domain_name

        headers = self._get_headers()
        headers['User-Agent'] = self._user_agent
        if session_type:
            headers['Wazo-Session-Type'] = session_type
        if user_agent:
            headers['User-Agent'] = user_agent

        # Basic is always sent: the given or constructor credentials, else `:` (`Og==`).
        auth = self._client.session_auth() or (None, None)
        if username and password:
            auth = (username, password)
        r = self._client.request('POST', self.base_url, headers=headers, json_body=data, auth=auth)
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()['data']

    def delete(self, user_uuid, client_id, tenant_uuid=None):
        headers = self._get_headers(tenant_uuid=tenant_uuid)
        url = self._client.url('users', user_uuid, 'tokens', client_id)
        r = self._client.request('DELETE', url, headers=headers)
        if r.status != 204:
            self.raise_from_response(r)

    def revoke(self, token):
        headers = self._get_headers()
        self._client.request('DELETE', f'{self.base_url}/{token}', headers=headers)

    @staticmethod
    def _params(required_acl, tenant):
        params = {}
        if required_acl:
            params['scope'] = required_acl
        if tenant:
            params['tenant'] = tenant
        return params

    def check(self, token, required_acl=None, tenant=None):
        r = self._client.request(
            'HEAD',
            f'{self.base_url}/{token}',
            headers=self._get_headers(),
            params=self._params(required_acl, tenant),
        )
        if r.status == 204:
            return True
        if r.status == 404:
            raise InvalidTokenException()
        if r.status == 403:
            raise MissingPermissionsTokenException()
        self.raise_from_response(r)

    def is_valid(self, token, required_acl=None, tenant=None):
        r = self._client.request(
            'HEAD',
            f'{self.base_url}/{token}',
            headers=self._get_headers(),
            params=self._params(required_acl, tenant),
        )
        if r.status in (204, 403, 404):
            return r.status == 204
        self.raise_from_response(r)

    def check_scopes(self, token, scopes, tenant=None):
        data = {'scopes': scopes}
        if tenant:
            data['tenant_uuid'] = tenant
        headers = self._get_headers()
        headers['User-Agent'] = self._user_agent
        url = f'{self.base_url}/{token}/scopes/check'
        r = self._client.request('POST', url, headers=headers, json_body=data)
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()

    def get(self, token, required_acl=None, tenant=None):
        r = self._client.request(
            'GET',
            f'{self.base_url}/{token}',
            headers=self._get_headers(),
            params=self._params(required_acl, tenant),
        )
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()['data']

    def list(self, user_uuid=None, **kwargs):
        if user_uuid is None:
            raise TypeError('user_uuid cannot be None')
        headers = self._get_headers(**kwargs)
        url = self._client.url('users', user_uuid, 'tokens')
        r = self._client.request('GET', url, headers=headers, params=kwargs)
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()


class RefreshTokenCommand(RESTCommand):
    resource = 'tokens'

    def list(self, **kwargs):
        headers = self._get_headers(**kwargs)
        r = self._client.request('GET', self.base_url, headers=headers, params=kwargs)
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()


class SessionsCommand(RESTCommand):
    resource = 'sessions'

    def list(self, **kwargs):
        headers = self._get_headers(**kwargs)
        r = self._client.request('GET', self.base_url, headers=headers, params=kwargs)
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()

    def delete(self, session_uuid, tenant_uuid=None):
        headers = self._get_headers(tenant_uuid=tenant_uuid)
        r = self._client.request('DELETE', f'{self.base_url}/{session_uuid}', headers=headers)
        if r.status != 204:
            self.raise_from_response(r)


class UsersCommand(RESTCommand):
    resource = 'users'

    def get_sessions(self, user_uuid, **kwargs):
        headers = self._get_headers(**kwargs)
        url = f'{self.base_url}/{user_uuid}/sessions'
        r = self._client.request('GET', url, headers=headers, params=kwargs)
        if r.status != 200:
            self.raise_from_response(r)
        return r.json()

    def remove_session(self, user_uuid, session_uuid):
        url = f'{self.base_url}/{user_uuid}/sessions/{session_uuid}'
        r = self._client.request('DELETE', url, headers=self._get_headers())
        if r.status != 204:
            self.raise_from_response(r)


# --------------------------------------------------------------------------------------------
# Expectations.
# --------------------------------------------------------------------------------------------


class Failed(Exception):
    pass


CURRENT_STEP = ['(start)']


def step(name: str) -> None:
    CURRENT_STEP[0] = name
    print(f'-- {name}', flush=True)


def expect(condition, message: str) -> None:
    if not condition:
        raise Failed(message)


def expect_eq(actual, expected, what: str) -> None:
    if actual != expected:
        raise Failed(f'{what}: expected {expected!r}, got {actual!r}')


def expect_http_error(status: int, fn, *args, **kwargs) -> HTTPError:
    """`fn` must raise HTTPError with `status`; returns it."""
    try:
        result = fn(*args, **kwargs)
    except HTTPError as e:
        expect_eq(e.status, status, f'status of {e.response.method} {e.response.url}')
        return e
    raise Failed(f'expected HTTP {status}, the call returned {result!r}')


def expect_raises(exc_type, fn, *args, **kwargs) -> None:
    try:
        result = fn(*args, **kwargs)
    except exc_type:
        return
    raise Failed(f'expected {exc_type.__name__}, the call returned {result!r}')


def expect_legacy_error(err: HTTPError, status: int, reason: str) -> None:
    """Format A of §1.2: `{"reason": [..], "timestamp": [float], "status_code": N}`."""
    body = err.response.json_or_none()
    expect(isinstance(body, dict), f'error body is not a JSON object: {err.response.text()!r}')
    expect_eq(body.get('reason'), [reason], 'error reason')
    expect_eq(body.get('status_code'), status, 'error status_code')
    ts = body.get('timestamp')
    expect(
        isinstance(ts, list) and len(ts) == 1 and isinstance(ts[0], (int, float)),
        f'error timestamp must be a one-element list of numbers: {ts!r}',
    )


def api_error(err: HTTPError) -> dict:
    """Format B of §1.2: `{"message", "error_id", "details", "timestamp"}`."""
    body = err.response.json_or_none()
    expect(isinstance(body, dict), f'error body is not a JSON object: {err.response.text()!r}')
    for key in ('message', 'error_id', 'details', 'timestamp'):
        expect(key in body, f'API error without {key!r}: {body!r}')
    return body


def is_uuid(value) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


UTC_FORMAT = '%Y-%m-%dT%H:%M:%S.%f'
TOKEN_KEYS = [
    'token',
    'auth_id',
    'xivo_user_uuid',
    'xivo_uuid',
    'issued_at',
    'expires_at',
    'utc_issued_at',
    'utc_expires_at',
    'acl',
    'metadata',
    'session_uuid',
    'remote_addr',
    'user_agent',
]
REFRESH_TOKEN_ITEM_KEYS = [
    'client_id',
    'created_at',
    'mobile',
    'user_uuid',
    'tenant_uuid',
    'metadata',
]
SESSION_ITEM_KEYS = {'uuid', 'mobile', 'tenant_uuid', 'user_uuid'}
MISSING_PERMISSION = 'missing_permission_or_invalid_tenant'


def local_of(utc: datetime) -> datetime:
    """The server-local wall time of a naive UTC time (whole seconds through the OS zone)."""
    seconds = int(utc.replace(microsecond=0, tzinfo=timezone.utc).timestamp())
    return datetime.fromtimestamp(seconds) + timedelta(microseconds=utc.microsecond)


def expect_token_data(
    data, *, user_uuid, tenant, offline=False, posted=True, lifetime=None, user_agent=None
):
    """The `data` object of POST or GET /token (§1.3)."""
    expected_keys = TOKEN_KEYS + (['refresh_token'] if offline else [])
    expect_eq(list(data.keys()), expected_keys, 'token data keys (in order)')
    expect(is_uuid(data['token']), f'token is not a UUID: {data["token"]!r}')
    expect(is_uuid(data['session_uuid']), f'session_uuid is not a UUID: {data["session_uuid"]!r}')
    if offline:
        refresh = data['refresh_token']
        expect(is_uuid(refresh), f'refresh_token is not a UUID: {refresh!r}')
    expect_eq(data['auth_id'], user_uuid, 'auth_id')
    expect_eq(data['xivo_user_uuid'], user_uuid, 'xivo_user_uuid')
    expect(isinstance(data['acl'], list), f'acl is not a list: {data["acl"]!r}')
    meta = data['metadata']
    expect_eq(meta.get('uuid'), user_uuid, 'metadata.uuid')
    expect_eq(meta.get('auth_id'), user_uuid, 'metadata.auth_id')
    expect_eq(meta.get('pbx_user_uuid'), user_uuid, 'metadata.pbx_user_uuid')
    expect_eq(meta.get('tenant_uuid'), tenant, 'metadata.tenant_uuid')
    expect_eq(meta.get('purpose'), 'user', 'metadata.purpose')
    expect_eq(data['remote_addr'], '127.0.0.1', 'remote_addr')
    if user_agent is not None:
        expect_eq(data['user_agent'], user_agent, 'user_agent')

    utc_issued = datetime.strptime(data['utc_issued_at'], UTC_FORMAT)
    utc_expires = datetime.strptime(data['utc_expires_at'], UTC_FORMAT)
    if posted:
        # POST: float times, local fields with microseconds (the upstream test parses %f).
        issued = datetime.strptime(data['issued_at'], UTC_FORMAT)
        expires = datetime.strptime(data['expires_at'], UTC_FORMAT)
        expect_eq(issued, local_of(utc_issued), 'issued_at as local time of utc_issued_at')
        expect_eq(expires, local_of(utc_expires), 'expires_at as local time of utc_expires_at')
    else:
        # GET: int times read back, so no fraction in the local fields and .000000 in utc_.
        for key in ('issued_at', 'expires_at'):
            expect(
                re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d', data[key]),
                f'GET {key} must have no fractional part: {data[key]!r}',
            )
        for key in ('utc_issued_at', 'utc_expires_at'):
            expect(data[key].endswith('.000000'), f'GET {key} must end in .000000: {data[key]!r}')
        expect_eq(
            datetime.fromisoformat(data['issued_at']), local_of(utc_issued), 'GET issued_at'
        )
    if lifetime is not None:
        delta = (utc_expires - utc_issued).total_seconds()
        expect(
            abs(delta - lifetime) < 1, f'lifetime: expected {lifetime}s, got {delta}s ({data!r})'
        )


def revoked_header(client: Client) -> str | None:
    return client.last_response.headers.get('Wazo-Sessions-Revoked')


# --------------------------------------------------------------------------------------------
# The scenario.
# --------------------------------------------------------------------------------------------


def scenario(args) -> None:
    def client(**kwargs) -> Client:
        return Client('127.0.0.1', port=args.port, prefix=None, https=False, **kwargs)

    uid = args.user_uuid
    tenant = args.tenant
    anon = client()
    alice = client(username=args.username, password=args.password)
    unknown = str(uuid.uuid4())

    step('Basic Og== with nothing else is no credentials: 401')
    err = expect_http_error(401, anon.token.new)
    expect_eq(anon.last_request.header('Authorization'), 'Basic Og==', 'anonymous Basic header')
    expect_legacy_error(err, 401, 'Authentication Failed')

    step('login with expiration as the string "3600" (wazo-auth-cli)')
    data = alice.token.new(expiration='3600')
    req = alice.last_request
    expect_eq(json.loads(req.body), {'expiration': '3600'}, 'POST /0.1/token body')
    expect_eq(req.target, '/0.1/token', 'POST path')
    expect_eq(req.header('User-Agent'), 'Wazo Python auth client', 'token.new User-Agent')
    expect_eq(req.header('Connection'), 'close', 'Connection header')
    expect_eq(req.header('Accept'), 'application/json', 'Accept header')
    expect_eq(req.header('Content-Type'), 'application/json', 'Content-Type header')
    expect_eq(
        req.header('Authorization'),
        alice.basic_auth(args.username, args.password),
        'Basic credentials',
    )
    expect_eq(revoked_header(alice), '0', 'Wazo-Sessions-Revoked of an online login')
    expect_token_data(
        data, user_uuid=uid, tenant=tenant, lifetime=3600, user_agent='Wazo Python auth client'
    )
    expect('refresh_token' not in data, f'online login must not carry refresh_token: {data!r}')
    expect('pbx_user_uuid' not in data, 'no top-level pbx_user_uuid')
    for entry in ('auth.users.me.#', 'confd.users.me.read'):
        expect(entry in data['acl'], f'{entry} missing from acl {data["acl"]!r}')
    t1 = data['token']
    t1_session = data['session_uuid']
    alice.set_token(t1)

    step('a custom user agent is stored')
    custom = client(username=args.username, password=args.password).token.new(
        user_agent='custom-agent/1.0', expiration=60
    )
    expect_token_data(
        custom, user_uuid=uid, tenant=tenant, lifetime=60, user_agent='custom-agent/1.0'
    )

    step('token.get')
    got = alice.token.get(t1)
    req = alice.last_request
    expect_eq(req.target, f'/0.1/token/{t1}', 'GET path (no query when no scope/tenant)')
    expect_eq(req.header('X-Auth-Token'), t1, 'X-Auth-Token header once a token is set')
    expect_eq(req.header('User-agent'), os.path.basename(sys.argv[0]), 'default User-agent')
    expect_token_data(
        got,
        user_uuid=uid,
        tenant=tenant,
        posted=False,
        lifetime=3600,
        user_agent='Wazo Python auth client',
    )
    expect_eq(got['token'], t1, 'GET token')
    expect_eq(got['session_uuid'], t1_session, 'GET session_uuid')
    expect_eq(got['acl'], data['acl'], 'GET acl')
    alice.token.get(t1, required_acl='confd.users.me.read')
    expect_eq(
        alice.last_request.target,
        f'/0.1/token/{t1}?scope=confd.users.me.read',
        'GET with required_acl sends scope=',
    )
    alice.token.get(t1, required_acl=f'confd.users.{uid}.read')
    alice.token.get(t1, tenant=tenant)
    alice.token.get(t1, required_acl='confd.users.me.read', tenant=args.sub_tenant)
    err = expect_http_error(403, alice.token.get, t1, required_acl='confd.users.me.delete')
    expect_legacy_error(err, 403, 'Unauthorized for confd.users.me.delete')
    err = expect_http_error(403, alice.token.get, t1, tenant=args.other_tenant)
    expect_legacy_error(err, 403, f'Unauthorized for tenant {args.other_tenant}')
    err = expect_http_error(404, alice.token.get, unknown)
    expect_legacy_error(err, 404, 'No such token')
    # wazo-auth-client raises for a 404 on a non-UUID: the body is not ours to judge (HTML).
    expect_http_error(404, alice.token.get, 'abcdef')

    step('token.check (HEAD)')
    expect_eq(alice.token.check(t1), True, 'check(t1)')
    expect_eq(alice.last_request.method, 'HEAD', 'check method')
    expect_eq(alice.last_response.content, b'', 'HEAD body')
    expect_eq(alice.token.check(t1, required_acl='confd.users.me.read'), True, 'check granted acl')
    expect_eq(alice.token.check(t1, tenant=args.sub_tenant), True, 'check sub-tenant')
    expect_eq(alice.token.check(t1.upper()), True, 'check with an upper-case UUID')
    expect_raises(
        MissingPermissionsTokenException,
        alice.token.check,
        t1,
        required_acl='confd.users.me.delete',
    )
    expect_raises(MissingPermissionsTokenException, alice.token.check, t1, tenant=args.other_tenant)
    expect_raises(InvalidTokenException, alice.token.check, unknown)
    expect_raises(InvalidTokenException, alice.token.check, 'abcdef')

    step('token.is_valid')
    expect_eq(alice.token.is_valid(t1), True, 'is_valid(t1)')
    expect_eq(alice.token.is_valid(t1, required_acl='confd.users.me.read'), True, 'granted acl')
    me_acl = f'auth.users.{uid}.tokens.read'
    expect_eq(alice.token.is_valid(t1, required_acl=me_acl), True, 'me acl')
    expect_eq(alice.token.is_valid(t1, required_acl='confd.users.me.delete'), False, 'refused acl')
    expect_eq(alice.token.is_valid(t1, tenant=tenant), True, 'own tenant')
    expect_eq(alice.token.is_valid(t1, tenant=args.other_tenant), False, 'foreign tenant')
    expect_eq(alice.token.is_valid(unknown), False, 'unknown token')

    step('token.check_scopes')
    scopes = [
        'confd.users.me.read',
        f'confd.users.{uid}.read',
        'confd.users.me.delete',
        'auth.tokens.read',
        'confd.users.me.read',
    ]
    expected_scopes = {
        'scopes': {
            'confd.users.me.read': True,
            f'confd.users.{uid}.read': True,
            'confd.users.me.delete': False,
            'auth.tokens.read': True,
        }
    }
    expect_eq(alice.token.check_scopes(t1, scopes), expected_scopes, 'check_scopes')
    expect_eq(json.loads(alice.last_request.body), {'scopes': scopes}, 'check_scopes body')
    expect_eq(alice.token.check_scopes(t1, scopes, tenant=tenant), expected_scopes, 'own tenant')
    expect_eq(
        json.loads(alice.last_request.body),
        {'scopes': scopes, 'tenant_uuid': tenant},
        'check_scopes body with tenant',
    )
    expect_eq(alice.token.check_scopes(t1, []), {'scopes': {}}, 'no scopes')
    err = expect_http_error(403, alice.token.check_scopes, t1, scopes, tenant=args.other_tenant)
    expect_legacy_error(err, 403, f'Unauthorized for tenant {args.other_tenant}')
    err = expect_http_error(404, alice.token.check_scopes, unknown, scopes)
    expect_legacy_error(err, 404, 'No such token')

    step('offline login with client_id')
    offline = alice.token.new(expiration='3600', access_type='offline', client_id='python-desktop')
    expect_eq(
        json.loads(alice.last_request.body),
        {'expiration': '3600', 'client_id': 'python-desktop', 'access_type': 'offline'},
        'offline login body',
    )
    expect_eq(revoked_header(alice), '0', 'Wazo-Sessions-Revoked of a non-mobile offline login')
    expect_token_data(offline, user_uuid=uid, tenant=tenant, offline=True, lifetime=3600)
    rt = offline['refresh_token']
    expect(rt != offline['token'], 'refresh token equals the access token')
    err = expect_http_error(400, alice.token.new, access_type='offline')
    expect_legacy_error(
        err,
        400,
        "{'_schema': ['\"client_id\" must be specified when using \"access_type\" is \"offline\"']}",
    )

    step('refresh with Basic Og== (token.new(refresh_token=..., client_id=...))')
    refreshed = anon.token.new(refresh_token=rt, client_id='python-desktop', expiration=600)
    expect_eq(anon.last_request.header('Authorization'), 'Basic Og==', 'refresh Basic header')
    expect_eq(
        json.loads(anon.last_request.body),
        {'expiration': 600, 'client_id': 'python-desktop', 'refresh_token': rt},
        'refresh body',
    )
    expect_token_data(refreshed, user_uuid=uid, tenant=tenant, lifetime=600)
    expect(
        'refresh_token' not in refreshed,
        f'a refresh must not return refresh_token: {refreshed!r}',
    )
    expect(refreshed['token'] not in (t1, offline['token']), 'refresh returned an old token')
    expect(refreshed['session_uuid'] != offline['session_uuid'], 'refresh reused the session')
    expect_eq(revoked_header(anon), '0', 'Wazo-Sessions-Revoked of a refresh')
    expect_eq(anon.token.is_valid(refreshed['token']), True, 'refreshed token valid')

    step('refresh ignores Basic credentials, even wrong ones')
    wrong = client(username=args.username, password=args.password + '-wrong')
    again = wrong.token.new(refresh_token=rt, client_id='python-desktop')
    expect_token_data(again, user_uuid=uid, tenant=tenant)
    expect('refresh_token' not in again, 'refresh must not return refresh_token')
    expect_http_error(401, wrong.token.new)

    step('refresh failures')
    err = expect_http_error(401, anon.token.new, refresh_token=rt, client_id='another-client')
    expect_legacy_error(err, 401, 'Authentication Failed')
    err = expect_http_error(401, anon.token.new, refresh_token=t1, client_id='python-desktop')
    expect_legacy_error(err, 401, 'Authentication Failed')
    err = expect_http_error(
        400, anon.token.new, refresh_token=rt, client_id='python-desktop', access_type='offline'
    )
    expect_legacy_error(
        err, 400, "{'_schema': ['cannot use the \"access_type\" \"offline\" with a refresh token']}"
    )
    # A refresh token is no access token.
    expect_eq(anon.token.is_valid(rt), False, 'refresh token as access token')
    holder = client(token=rt)
    err = expect_http_error(401, holder.token.list, 'me')
    expect_eq(api_error(err)['details'].get('reason'), 'not_found_or_expired', 'details.reason')

    step('a second offline login returns the same refresh token')
    second = alice.token.new(access_type='offline', client_id='python-desktop')
    expect_eq(second['refresh_token'], rt, 'second offline login refresh_token')
    expect_eq(revoked_header(alice), '0', 'Wazo-Sessions-Revoked of a second offline login')
    other = alice.token.new(access_type='offline', client_id='com.wazo.python')
    rt2 = other['refresh_token']
    expect(rt2 != rt, 'another client_id must get another refresh token')
    from_rt2 = anon.token.new(refresh_token=rt2, client_id='com.wazo.python')['token']

    step('other users log in offline (sub-tenant and foreign tenant)')
    carol = client(username=args.sub_username, password=args.sub_password)
    carol_data = carol.token.new(access_type='offline', client_id='python-desktop')
    expect_token_data(
        carol_data, user_uuid=args.sub_user_uuid, tenant=args.sub_tenant, offline=True
    )
    expect(carol_data['refresh_token'] not in (rt, rt2), 'refresh tokens are per user')
    bob = client(username=args.other_username, password=args.other_password)
    bob_data = bob.token.new(access_type='offline', client_id='python-desktop')
    expect_token_data(
        bob_data, user_uuid=args.other_user_uuid, tenant=args.other_tenant, offline=True
    )
    expect_eq(bob_data['acl'], [], 'acl of a user without ACL (empty default_user_acl)')
    bob.set_token(bob_data['token'])

    step("token.list('me', mobile=False, order='client_id', direction='desc', limit=10)")
    listing = alice.token.list('me', mobile=False, order='client_id', direction='desc', limit=10)
    expect_eq(
        alice.last_request.target,
        '/0.1/users/me/tokens?mobile=False&order=client_id&direction=desc&limit=10',
        'list target',
    )
    expect_eq(listing.get('total'), 2, 'total')
    expect_eq(listing.get('filtered'), 2, 'filtered')
    items = listing.get('items', [])
    expect_eq(
        [i.get('client_id') for i in items], ['python-desktop', 'com.wazo.python'], 'order desc'
    )
    for item in items:
        expect_eq(list(item.keys()), REFRESH_TOKEN_ITEM_KEYS, 'refresh token item keys (in order)')
        expect_eq(item['mobile'], False, 'item mobile')
        expect_eq(item['user_uuid'], uid, 'item user_uuid')
        expect_eq(item['tenant_uuid'], tenant, 'item tenant_uuid')
        expect_eq(item['metadata'], {}, 'item metadata')
        created = datetime.fromisoformat(item['created_at'])
        expect(
            created.tzinfo is not None,
            f'created_at must carry an offset: {item["created_at"]!r}',
        )
    text = alice.last_response.text()
    expect(rt not in text and rt2 not in text, 'the refresh token values must never be listed')

    listing = alice.token.list(uid, mobile=True)
    expect_eq(alice.last_request.query, 'mobile=True', 'mobile=True query')
    expect_eq((listing['total'], listing['filtered'], listing['items']), (2, 0, []), 'mobile=True')
    listing = alice.token.list('me', search='wazo')
    expect_eq((listing['total'], listing['filtered']), (2, 1), 'search=wazo')
    expect_eq([i['client_id'] for i in listing['items']], ['com.wazo.python'], 'search items')
    listing = alice.token.list(
        'me', tenant_uuid=tenant, order='client_id', direction='asc', limit=1, offset=1
    )
    expect_eq(alice.last_request.header('Wazo-Tenant'), tenant, 'tenant_uuid → Wazo-Tenant')
    expect(f'tenant_uuid={tenant}' in alice.last_request.query, 'tenant_uuid also in the query')
    expect_eq((listing['total'], listing['filtered']), (2, 2), 'paged totals')
    expect_eq([i['client_id'] for i in listing['items']], ['python-desktop'], 'limit=1&offset=1')
    err = expect_http_error(400, alice.token.list, 'me', order='bogus')
    expect_eq(api_error(err)['error_id'], 'invalid-list-param', 'bad order error_id')
    err = expect_http_error(401, bob.token.list, 'me')
    body = api_error(err)
    expect_eq(body['error_id'], 'unauthorized', 'missing ACL error_id')
    expect_eq(body['details'].get('reason'), MISSING_PERMISSION, 'missing ACL reason')

    step('refresh_tokens.list(recurse=True) and friends (auth.tokens.read)')
    def owners(listing):
        return sorted((i['user_uuid'], i['client_id']) for i in listing['items'])

    mine = sorted([(uid, 'python-desktop'), (uid, 'com.wazo.python')])
    listing = alice.refresh_tokens.list(recurse=False)
    expect_eq(alice.last_request.target, '/0.1/tokens?recurse=False', 'recurse=False target')
    expect_eq(owners(listing), mine, 'own tenant only')
    expect_eq((listing['total'], listing['filtered']), (2, 2), 'recurse=False totals')
    listing = alice.refresh_tokens.list(recurse=True)
    expect_eq(alice.last_request.target, '/0.1/tokens?recurse=True', 'recurse=True target')
    expect_eq(
        owners(listing),
        sorted(mine + [(args.sub_user_uuid, 'python-desktop')]),
        'recurse=True includes the sub-tenant, never the foreign tenant',
    )
    expect_eq((listing['total'], listing['filtered']), (3, 3), 'recurse=True totals')
    listing = alice.refresh_tokens.list(
        recurse=True, mobile=False, order='client_id', direction='desc'
    )
    expect_eq(listing['filtered'], 3, 'mobile=False filter')
    expect_eq(listing['items'][0]['client_id'], 'python-desktop', 'order=client_id desc')
    listing = alice.refresh_tokens.list(tenant_uuid=args.sub_tenant)
    expect_eq(alice.last_request.header('Wazo-Tenant'), args.sub_tenant, 'Wazo-Tenant header')
    expect_eq(alice.last_request.query, f'tenant_uuid={args.sub_tenant}', 'tenant_uuid in query')
    expect_eq(owners(listing), [(args.sub_user_uuid, 'python-desktop')], 'scoped to the sub-tenant')
    err = expect_http_error(401, alice.refresh_tokens.list, tenant_uuid=args.other_tenant)
    body = api_error(err)
    expect_eq(body['error_id'], 'unauthorized-tenant', 'foreign Wazo-Tenant error_id')
    expect_eq(body['details'].get('tenant_uuid'), args.other_tenant, 'foreign Wazo-Tenant details')

    step("token.delete('me', client_id) → 204, then refresh is 401")
    alice.token.delete('me', 'com.wazo.python')
    expect_eq(alice.last_response.status, 204, 'delete status')
    expect_eq(alice.last_request.target, '/0.1/users/me/tokens/com.wazo.python', 'delete path')
    err = expect_http_error(401, anon.token.new, refresh_token=rt2, client_id='com.wazo.python')
    expect_legacy_error(err, 401, 'Authentication Failed')
    expect_eq(
        alice.token.is_valid(from_rt2),
        True,
        'tokens issued from a deleted refresh token stay valid',
    )
    expect_eq(alice.token.is_valid(other['token']), True, 'the offline login token stays valid')
    err = expect_http_error(404, alice.token.delete, 'me', 'com.wazo.python')
    expect_eq(
        api_error(err)['error_id'],
        'cannot-find-refresh-token-matching-client-id',
        'second delete error_id',
    )
    expect_eq(alice.token.list('me')['total'], 1, 'one refresh token left')
    still = anon.token.new(refresh_token=rt, client_id='python-desktop')
    expect_eq(anon.token.is_valid(still['token']), True, 'python-desktop still refreshes')

    step("mobile login (session_type='mobile') and Wazo-Sessions-Revoked")
    mobile = alice.token.new(
        access_type='offline', client_id='python-mobile', session_type='mobile'
    )
    expect_eq(alice.last_request.header('Wazo-Session-Type'), 'mobile', 'Wazo-Session-Type header')
    expect_eq(revoked_header(alice), '0', 'first mobile login revokes nothing')
    expect_token_data(mobile, user_uuid=uid, tenant=tenant, offline=True)
    rm1 = mobile['refresh_token']
    mobile_refreshed = anon.token.new(
        refresh_token=rm1, client_id='python-mobile', session_type='mobile'
    )
    expect_eq(revoked_header(anon), '0', 'a mobile refresh revokes nothing')
    listing = alice.token.list('me', mobile=True)
    expect_eq((listing['total'], listing['filtered']), (2, 1), 'mobile=True after a mobile login')
    expect_eq(listing['items'][0]['client_id'], 'python-mobile', 'mobile item')
    expect_eq(listing['items'][0]['mobile'], True, 'mobile item flag')
    sessions = {s['uuid']: s for s in alice.users.get_sessions(uid)['items']}
    expect_eq(sessions.get(mobile['session_uuid'], {}).get('mobile'), True, 'mobile login session')
    expect_eq(
        sessions.get(mobile_refreshed['session_uuid'], {}).get('mobile'),
        True,
        'mobile refresh session',
    )
    expect_eq(sessions.get(t1_session, {}).get('mobile'), False, 'desktop session')

    mobile2 = alice.token.new(
        access_type='offline', client_id='python-mobile-2', session_type='Mobile'
    )
    expect_eq(
        revoked_header(alice),
        '2',
        'a new mobile device revokes the sessions (login + refresh) of the other mobile '
        'refresh token',
    )
    rm2 = mobile2['refresh_token']
    expect(rm2 != rm1, 'new mobile refresh token')
    expect_eq(alice.token.is_valid(mobile['token']), False, 'purged mobile login token')
    expect_eq(alice.token.is_valid(mobile_refreshed['token']), False, 'purged mobile refresh token')
    expect_eq(alice.token.is_valid(t1), True, 'non-mobile tokens are untouched')
    expect_http_error(401, anon.token.new, refresh_token=rm1, client_id='python-mobile')
    expect_eq(
        sorted(i['client_id'] for i in alice.token.list('me')['items']),
        ['python-desktop', 'python-mobile-2'],
        'refresh tokens after the mobile purge',
    )
    mobile3 = alice.token.new(
        access_type='offline', client_id='python-mobile-2', session_type='mobile'
    )
    expect_eq(revoked_header(alice), '1', 'mobile re-login with the same client_id')
    expect(mobile3['refresh_token'] != rm2, 'a mobile re-login rotates the refresh token')
    expect_eq(alice.token.is_valid(mobile2['token']), False, 'previous mobile token purged')
    expect_http_error(401, anon.token.new, refresh_token=rm2, client_id='python-mobile-2')

    step('sessions.list (auth.sessions.read)')
    listing = alice.sessions.list()
    expect_eq(alice.last_request.target, '/0.1/sessions', 'sessions.list target')
    expect_eq(listing['total'], listing['filtered'], 'sessions total == filtered')
    by_uuid = {s['uuid']: s for s in listing['items']}
    for s in listing['items']:
        expect_eq(set(s.keys()), SESSION_ITEM_KEYS, 'session item keys')
    expect_eq(
        by_uuid.get(t1_session),
        {'uuid': t1_session, 'mobile': False, 'tenant_uuid': tenant, 'user_uuid': uid},
        'the first session',
    )
    expect_eq(by_uuid.get(mobile3['session_uuid'], {}).get('mobile'), True, 'the mobile session')
    expect(carol_data['session_uuid'] not in by_uuid, 'sub-tenant sessions need recurse=True')
    expect(bob_data['session_uuid'] not in by_uuid, 'foreign tenant sessions are invisible')
    listing = alice.sessions.list(recurse=True)
    expect_eq(alice.last_request.target, '/0.1/sessions?recurse=True', 'recurse=True target')
    by_uuid = {s['uuid']: s for s in listing['items']}
    expect_eq(
        by_uuid.get(carol_data['session_uuid']),
        {
            'uuid': carol_data['session_uuid'],
            'mobile': False,
            'tenant_uuid': args.sub_tenant,
            'user_uuid': args.sub_user_uuid,
        },
        'recurse=True shows the sub-tenant session',
    )
    expect(bob_data['session_uuid'] not in by_uuid, 'foreign tenant sessions are invisible')
    listing = alice.sessions.list(recurse=False)
    expect(
        carol_data['session_uuid'] not in {s['uuid'] for s in listing['items']},
        'recurse=False hides the sub-tenant',
    )
    listing = alice.sessions.list(tenant_uuid=args.sub_tenant)
    expect_eq(
        [s['uuid'] for s in listing['items']],
        [carol_data['session_uuid']],
        'Wazo-Tenant: sub-tenant',
    )

    step('users.get_sessions / users.remove_session on my own uuid')
    listing = alice.users.get_sessions(uid)
    expect_eq(alice.last_request.target, f'/0.1/users/{uid}/sessions', 'get_sessions target')
    expect(all(s['user_uuid'] == uid for s in listing['items']), 'only my sessions')
    expect(t1_session in {s['uuid'] for s in listing['items']}, 'my first session is listed')
    victim = alice.token.new()
    alice.users.remove_session(uid, victim['session_uuid'])
    expect_eq(alice.last_response.status, 204, 'remove_session status')
    expect_eq(alice.token.is_valid(victim['token']), False, 'removed session token')
    alice.users.remove_session(uid, victim['session_uuid'])  # idempotent 204
    after = {s['uuid'] for s in alice.users.get_sessions(uid)['items']}
    expect(victim['session_uuid'] not in after, 'removed session still listed')
    err = expect_http_error(401, alice.users.get_sessions, args.other_user_uuid)
    expect_eq(api_error(err)['details'].get('reason'), MISSING_PERMISSION, 'reason')

    step('sessions.delete of my own session (auth.sessions.my_session.delete)')
    own = alice.token.new()
    own_client = client(token=own['token'])
    other_session = alice.token.new()['session_uuid']
    err = expect_http_error(401, own_client.sessions.delete, other_session)
    expect_eq(api_error(err)['details'].get('reason'), MISSING_PERMISSION, 'reason')
    own_client.sessions.delete(own['session_uuid'])
    expect_eq(own_client.last_response.status, 204, 'sessions.delete status')
    expect_eq(alice.token.is_valid(own['token']), False, 'deleted session token')

    step('token.revoke then is_valid is False')
    alice.token.revoke(t1)
    expect_eq(alice.last_request.method, 'DELETE', 'revoke method')
    expect_eq(alice.last_response.status, 200, 'revoke status')
    expect_eq(alice.last_response.json(), {'data': {'message': 'success'}}, 'revoke body')
    expect_eq(alice.token.is_valid(t1), False, 'revoked token')
    expect_raises(InvalidTokenException, alice.token.check, t1)
    err = expect_http_error(404, alice.token.get, t1)
    expect_legacy_error(err, 404, 'No such token')
    err = expect_http_error(401, alice.token.list, 'me')  # X-Auth-Token is still t1
    expect_eq(api_error(err)['details'].get('reason'), 'not_found_or_expired', 'reason')
    anon.token.revoke(unknown)
    expect_eq(anon.last_response.status, 200, 'revoking an unknown token')

    step('unicode passwords')
    u8 = client(username=args.utf8_username, password=args.utf8_password)
    data = u8.token.new()
    expect_eq(
        u8.last_request.header('Authorization'),
        'Basic ' + base64.b64encode(f'{args.utf8_username}:{args.utf8_password}'.encode()).decode(),
        'UTF-8 Basic header',
    )
    expect_eq(data['auth_id'], args.utf8_user_uuid, 'utf-8 login auth_id')
    expect_http_error(401, u8.token.new, username=args.utf8_username, password='pépéç')
    data = anon.token.new(username=args.latin1_username, password=args.latin1_password)
    expect_eq(data['auth_id'], args.latin1_user_uuid, 'utf-8 login of the latin-1 user')
    latin = client(username=args.latin1_username, password=args.latin1_password, encoding='latin-1')
    data = latin.token.new()
    raw = base64.b64decode(latin.last_request.header('Authorization').split(' ', 1)[1])
    expected_raw = f'{args.latin1_username}:{args.latin1_password}'.encode('latin-1')
    expect_eq(raw, expected_raw, 'latin-1 bytes')
    expect(raw != raw.decode('latin-1').encode('utf-8'), 'the latin-1 header differs from UTF-8')
    expect_eq(data['auth_id'], args.latin1_user_uuid, 'latin-1 login auth_id')
    expect_http_error(401, client(username=args.latin1_username, password='pepec').token.new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--username', required=True)
    parser.add_argument('--password', required=True)
    parser.add_argument('--user-uuid', required=True)
    parser.add_argument('--tenant', required=True, help="the user's tenant")
    parser.add_argument('--sub-tenant', required=True, help="a sub-tenant of the user's tenant")
    parser.add_argument('--sub-username', required=True)
    parser.add_argument('--sub-password', required=True)
    parser.add_argument('--sub-user-uuid', required=True)
    parser.add_argument('--other-tenant', required=True, help='an unrelated tenant')
    parser.add_argument('--other-username', required=True)
    parser.add_argument('--other-password', required=True)
    parser.add_argument('--other-user-uuid', required=True)
    parser.add_argument('--utf8-username', required=True)
    parser.add_argument('--utf8-password', default='pépéç€')
    parser.add_argument('--utf8-user-uuid', required=True)
    parser.add_argument('--latin1-username', required=True)
    parser.add_argument('--latin1-password', default='pépéç')
    parser.add_argument('--latin1-user-uuid', required=True)
    args = parser.parse_args()
    try:
        scenario(args)
    except Failed as e:
        print(f'FAILED at step "{CURRENT_STEP[0]}": {e}', file=sys.stderr)
        return 1
    except (Exception, InvalidTokenException, MissingPermissionsTokenException) as e:
        print(
            f'FAILED at step "{CURRENT_STEP[0]}": unexpected {type(e).__name__}: {e}',
            file=sys.stderr,
        )
        traceback.print_exc()
        return 1
    print('OK: the server answered as wazo-auth does for wazo-auth-client')
    return 0


if __name__ == '__main__':
    sys.exit(main())
