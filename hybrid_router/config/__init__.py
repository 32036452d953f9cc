"""The router configuration: its schema (schema.py), loading it with errors that name the file
and the field (loading.py), provider addresses and keys (endpoints.py), compiling its routing
part into the table `decide` runs on (compile.py), and prices (pricing.py).

The public names of the first three are importable from here.
"""

from ..core.table import LOCAL_PROVIDER_KINDS
from .endpoints import (
    is_local,
    normalize_base_url,
    provider_api_key,
    provider_base_url,
)
from .loading import (
    ConfigError,
    LoadedConfig,
    default_config_path,
    load_config,
    parse_config,
    read_config_file,
    templates_dir,
)
from .schema import (
    Background,
    Conditions,
    Delegate,
    Hooks,
    Near,
    Price,
    Provider,
    Proxy,
    Route,
    RouterConfig,
    Target,
    Tier,
)

__all__ = [
    "LOCAL_PROVIDER_KINDS",
    "Background",
    "Conditions",
    "ConfigError",
    "Delegate",
    "Hooks",
    "LoadedConfig",
    "Near",
    "Price",
    "Provider",
    "Proxy",
    "Route",
    "RouterConfig",
    "Target",
    "Tier",
    "default_config_path",
    "is_local",
    "load_config",
    "normalize_base_url",
    "parse_config",
    "provider_api_key",
    "provider_base_url",
    "read_config_file",
    "templates_dir",
]
