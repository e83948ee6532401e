"""Reference scheduler service for exported policies (numpy, onnxruntime, HTTP; never torch).

``millinet.scheduler.manifest`` defines the exported-policy folder, ``millinet.scheduler.runtime``
loads it and decides, ``millinet.scheduler.service`` serves it over HTTP,
``millinet.scheduler.client`` builds requests.
"""
