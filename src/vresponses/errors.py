"""The one exception tree: each class carries its HTTP status and API error type; the api writes them."""

from __future__ import annotations


class APIError(Exception):
    """An error the client sees as `{"error": {message, type, param, code}}` with this status."""

    status = 500
    type = "server_error"
    code: str | None = None
    # Seconds a client should wait before retrying (the Retry-After header of a 429 or 503).
    retry_after: int | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidRequest(APIError):
    """The request is malformed or breaks a documented limit."""

    status = 400
    type = "invalid_request_error"


class ContextTooLong(InvalidRequest):
    """The prompt does not fit the model's context."""

    code = "context_length_exceeded"


class Unauthorized(APIError):
    """No key, or a wrong one."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(APIError):
    """The model, response or route does not exist (for this key)."""

    status = 404
    type = "not_found_error"


class MethodNotAllowed(APIError):
    """The route exists but not with this method."""

    status = 405
    type = "invalid_request_error"


class BodyTooLarge(APIError):
    """The request body is over the configured limit."""

    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(APIError):
    """A POST body that is not declared as JSON (so a web page cannot send it cross-site as text/plain)."""

    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class TooManyRequests(APIError):
    """A bound on concurrent work was reached."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retry_after = 1


class Unavailable(APIError):
    """The engine or the store cannot serve right now."""

    status = 503
    type = "service_unavailable"
    code = "service_unavailable"
    retry_after = 1


class RequestTimeout(APIError):
    """The request ran longer than the server's wall-clock limit."""

    status = 504
    type = "timeout_error"
    code = "request_timeout"


class InternalError(APIError):
    """A bug: logged with its traceback, answered without internals."""

    status = 500
    type = "server_error"
