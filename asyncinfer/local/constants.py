"""What every part of local mode shares: the placeholder account.

The clock and the timestamp format are the product's own (``lambdas.common.clock``).
"""

from __future__ import annotations

# moto's default account, so the ARNs local mode builds match the ones moto returns.
ACCOUNT_ID = "123456789012"
