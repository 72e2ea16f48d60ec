from django.urls import path

from inspections import views

app_name = "inspections"

urlpatterns = [
    path("", views.queues, name="queues"),
    path("history/", views.history, name="history"),
    path("<slug:slug>/", views.inspect, name="inspect"),
    path("<slug:slug>/judge", views.judge, name="judge"),
    path("<slug:slug>/undo", views.undo, name="undo"),
]
