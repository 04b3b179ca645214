"""The one view of the example project: enqueue ingestion for a device and a range."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingestion import InvalidJobError, enqueue_ingestion_on_commit


@csrf_exempt
@require_POST
def request_ingestion(request: HttpRequest) -> HttpResponse:
    """Enqueue jobs for POSTed ``device``, ``start``, ``end`` once the request commits.

    With ``fail=1`` the view raises after enqueueing, so the request's
    transaction rolls back and no job is published (the tests use this).
    """
    try:
        job_ids = enqueue_ingestion_on_commit(
            request.POST["device"],
            request.POST["start"],
            request.POST["end"],
            request.POST.get("window") or None,
        )
    except (KeyError, InvalidJobError) as error:
        return JsonResponse({"error": str(error)}, status=400)
    if request.POST.get("fail") == "1":
        raise RuntimeError("failing on purpose after enqueueing; the jobs must not go out")
    return JsonResponse({"job_ids": job_ids}, status=202)
