"""Reference scheduler service for exported policies (numpy, onnxruntime, HTTP; never torch).

``scheduler.manifest`` defines the exported-policy folder, ``scheduler.runtime`` loads it and
decides, ``scheduler.service`` serves it over HTTP, ``scheduler.client`` builds requests.
"""
