"""W5: one task that fails on its first two attempts and succeeds on the third."""

from lockgate import pipeline, task


@task(retries=3, retry_delay=0)
def flaky(ctx) -> str:
    if ctx.attempt < 3:
        raise RuntimeError(f"planned failure on attempt {ctx.attempt}")
    return "ok"


with pipeline("bench_retry") as bench_retry:
    flaky()
