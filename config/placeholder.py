from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from partners.decorators import partner_required


def empty_page(title: str):
    @partner_required
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return render(request, "partials/empty_page.html", {"title": title})

    return view
