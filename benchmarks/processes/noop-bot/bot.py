"""A bot whose items need no page work."""


def process(ctx):  # noqa: ANN001, ANN201
    ctx.output["seen"] = ctx.item["ref"]
