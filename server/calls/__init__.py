"""The call pages: the consultation page (pre-call check, waiting room, call, end), the
standalone pre-call check and the clinician's dashboard."""
