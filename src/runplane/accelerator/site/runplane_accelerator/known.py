"""The SDK job loops the accelerator was written against, by fingerprint (``fingerprint.py``).

Each entry was read against ``loop.py``: the replacements reproduce that code's behaviour with
events for waits. Regenerate a fingerprint with
``python -c "from runplane_accelerator.fingerprint import fingerprint; print(fingerprint(open(PATH).read()))"``
on ``runpod/serverless/modules/rp_scale.py`` of a release, after reading what changed in it.
"""

KNOWN: dict = {
    "0c414a6f7b890c4d": "1.7.6-1.7.7",
    "f7b447c442756a93": "1.7.8",
    "90ce1693e5eee466": "1.7.9-1.7.11",
    "98a481806417318c": "1.7.12-1.7.13",
    "8126fde1c1b7e800": "1.8.1-1.9.0",
    "73aa060093d2493b": "1.9.1",
    "8382efc28c5fca04": "1.10.0-1.11.0",
    "1cff40a96386fed3": "1.12.0",
}
