"""The base of the six model types: schema lookup, credential and parameter checks, error
mapping and pricing, done once here so that providers only implement the seed's methods."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar

from providers.sdk.concurrency import call_maybe_async
from providers.sdk.credentials import (
    scrub,
    secret_values,
    validate_credential_form,
    without_secrets,
)
from providers.sdk.entities.schema import (
    AIModelEntity,
    ConfigurateMethod,
    CredentialFormSchema,
    ModelType,
    PriceInfo,
    PriceType,
)
from providers.sdk.errors import (
    CredentialsValidateFailedError,
    InternalError,
    InvalidCredentialsError,
    InvalidParameterError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeError,
    ModelNotFoundError,
    ModelRuntimeError,
)
from providers.sdk.parameters import validate_parameters
from providers.sdk.pricing import get_price
from providers.sdk.recent import Recent, credentials_key
from providers.sdk.tokenizer import estimate_tokens

if TYPE_CHECKING:
    from providers.sdk.entities.schema import ProviderEntity

logger = logging.getLogger(__name__)

Credentials = dict[str, str]
T = TypeVar("T")
# What an implementation method returns: written as a plain method it returns the value, written
# as `async def` it returns an awaitable of it. The base classes accept both.
MaybeAwaitable: TypeAlias = T | Awaitable[T]

# Credential sets (and models) whose form check and customizable schema are kept, per model type.
RECENT_CREDENTIALS = 256
# A customizable schema may come from the model's server (Xinference's context length, say), so
# it is rebuilt at least this often.
CUSTOMIZABLE_SCHEMA_MAX_AGE = 30.0


class AIModel:
    """What every model type shares. Subclasses implement the seed's methods:

    - `validate_credentials(model, credentials)`: raise CredentialsValidateFailedError if the
      upstream refuses them;
    - `get_customizable_model_schema(model, credentials)`: for customizable models;
    - `_invoke_error_mapping`: which exceptions of the provider's HTTP client mean which
      InvokeError;
    - `_invoke(...)`: the call itself, with the signature of the model type.

    Each may be a plain method (run on a worker thread) or `async def`.
    """

    model_type: ClassVar[ModelType]

    def __init__(self, provider_schema: ProviderEntity) -> None:
        self.provider_schema = provider_schema
        self.provider_name = provider_schema.provider
        self.predefined_models: dict[str, AIModelEntity] = {
            m.model: m for m in provider_schema.models if m.model_type is self.model_type
        }
        self._checked_credentials: Recent[Credentials] = Recent(RECENT_CREDENTIALS)
        self._customizable_schemas: Recent[AIModelEntity] = Recent(
            RECENT_CREDENTIALS, CUSTOMIZABLE_SCHEMA_MAX_AGE
        )

    # ---- to implement -----------------------------------------------------------------------

    def validate_credentials(self, model: str, credentials: Credentials) -> MaybeAwaitable[None]:
        raise NotImplementedError

    def get_customizable_model_schema(
        self, model: str, credentials: Credentials
    ) -> MaybeAwaitable[AIModelEntity | None]:
        return None

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {}

    # ---- helpers for implementations ---------------------------------------------------------

    def _get_num_tokens_by_gpt2(self, text: str) -> int:
        return estimate_tokens(text)

    def get_price(self, schema: AIModelEntity, price_type: PriceType, tokens: int) -> PriceInfo:
        return get_price(schema.pricing, price_type, tokens)

    # ---- used by the runtime -----------------------------------------------------------------

    def is_customizable(self) -> bool:
        return ConfigurateMethod.CUSTOMIZABLE_MODEL in self.provider_schema.configurate_methods

    def credential_form(self, model: str) -> list[CredentialFormSchema]:
        """The form `model`'s credentials are checked against: the provider's for predefined
        models, the model form for customizable ones."""
        schema = self.provider_schema
        if model in self.predefined_models or not self.is_customizable():
            form = schema.provider_credential_schema
            return list(form.credential_form_schemas) if form else []
        model_form = schema.model_credential_schema
        return list(model_form.credential_form_schemas) if model_form else []

    def check_credential_form(self, model: str, credentials: Mapping[str, str]) -> Credentials:
        """The credentials the provider sees (defaults filled in, unknown keys dropped), or
        InvalidCredentialsError. The answer for the same model and credentials is kept, and
        each call gets its own copy (a provider may fill some in)."""
        key = credentials_key(model, credentials)
        validated = self._checked_credentials.get(key)
        if validated is None:
            validated, violations = validate_credential_form(
                self.credential_form(model), credentials, model_type=self.model_type.value
            )
            if violations:
                raise InvalidCredentialsError(violations, provider=self.provider_name, model=model)
            self._checked_credentials.put(key, validated)
        return dict(validated)

    async def model_schema(self, model: str, credentials: Credentials | None) -> AIModelEntity:
        """The predefined schema, else the customizable one built from `credentials`."""
        predefined = self.predefined_models.get(model)
        if predefined is not None:
            return predefined
        if self.is_customizable() and credentials is not None:
            key = credentials_key(model, credentials)
            schema = self._customizable_schemas.get(key)
            if schema is not None:
                return schema
            with self.mapped_errors(model, credentials):
                schema = await call_maybe_async(
                    self.get_customizable_model_schema, model, credentials
                )
            if schema is not None:
                self._customizable_schemas.put(key, schema)
                return schema  # type: ignore[no-any-return]
        raise ModelNotFoundError(
            f"{self.provider_name} has no {self.model_type.value} model {model!r}"
            + (
                ""
                if credentials is not None or not self.is_customizable()
                else "; customizable models need credentials"
            ),
            provider=self.provider_name,
            model=model,
        )

    async def prepare(
        self, model: str, credentials: Mapping[str, str], parameters: Mapping[str, Any] | None
    ) -> tuple[AIModelEntity, Credentials, dict[str, Any]]:
        """Checks the credential form, resolves the schema and checks the parameters."""
        checked = self.check_credential_form(model, credentials)
        schema = await self.model_schema(model, checked)
        params: dict[str, Any] = {}
        if parameters is not None:
            params, violations = validate_parameters(schema.parameter_rules, parameters)
            if violations:
                raise InvalidParameterError(violations, provider=self.provider_name, model=model)
        return schema, checked, params

    async def validate(self, model: str, credentials: Mapping[str, str]) -> Credentials:
        """ValidateModelCredentials: the form, then the upstream. Returns the credentials as the
        provider keeps them (it may fill some in), without secret fields."""
        checked = self.check_credential_form(model, credentials)
        with self.mapped_errors(model, checked, validating=True):
            await call_maybe_async(self.validate_credentials, model, checked)
        return without_secrets(self.credential_form(model), checked)

    async def call_impl(
        self, model: str, credentials: Mapping[str, str], fn: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """Calls an implementation method (sync or async) with its errors mapped."""
        with self.mapped_errors(model, credentials):
            return await call_maybe_async(fn, *args, **kwargs)

    @contextmanager
    def mapped_errors(
        self,
        model: str,
        credentials: Mapping[str, str],
        *,
        validating: bool = False,
        form: list[CredentialFormSchema] | None = None,
    ) -> Iterator[None]:
        """Turns whatever the implementation raises into the runtime's typed errors.

        Used around every call into provider code, including each step of a stream, so an error
        raised mid-stream is mapped like one raised before the first chunk.
        """
        try:
            yield
        except ModelRuntimeError as exc:
            finished = self._finish(exc, model, credentials, validating, form)
            if finished is exc:
                raise  # keep the cause it already has (the HTTP client's exception, say)
            raise finished from exc
        except Exception as exc:
            raise self._finish(
                self._transform_invoke_error(exc), model, credentials, validating, form
            ) from exc

    def _transform_invoke_error(self, exc: Exception) -> ModelRuntimeError:
        for invoke_error, sources in self._invoke_error_mapping.items():
            if isinstance(exc, tuple(sources)):
                return invoke_error(str(exc) or invoke_error.default_description)
        logger.error(
            "%s/%s raised an exception its _invoke_error_mapping does not map",
            self.provider_name,
            self.model_type.value,
            exc_info=exc,
        )
        return InternalError(f"unexpected {type(exc).__name__} in provider {self.provider_name}")

    def _finish(
        self,
        exc: ModelRuntimeError,
        model: str,
        credentials: Mapping[str, str],
        validating: bool,
        form: list[CredentialFormSchema] | None = None,
    ) -> ModelRuntimeError:
        if validating and isinstance(exc, InvokeAuthorizationError | InvokeBadRequestError):
            # During validation the upstream's refusal is the answer, not a failure to call.
            exc = CredentialsValidateFailedError(exc.description)
        elif type(exc) is InvokeError:
            logger.error(
                "%s raised a bare InvokeError; it should raise one of its subclasses",
                self.provider_name,
            )
            exc = InternalError(exc.description)
        exc.provider = exc.provider or self.provider_name
        exc.model = exc.model or model
        exc.description = scrub(
            exc.description, secret_values(form or self.credential_form(model), credentials)
        )
        exc.args = (exc.description,)
        return exc
