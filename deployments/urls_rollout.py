from django.urls import path

from deployments import views_rollout

app_name = "rollout"

urlpatterns = [
    path("", views_rollout.rollout_index, name="index"),
    path("promotions/<int:request_id>/", views_rollout.promotion_page, name="promotion"),
    path("promotions/<int:request_id>/decide", views_rollout.promotion_decide, name="decide"),
    path("<slug:slug>/", views_rollout.rollout_page, name="queue"),
    path("<slug:slug>/kill-switch", views_rollout.kill_switch_post, name="kill_switch"),
    path("<slug:slug>/rollback", views_rollout.rollback_post, name="rollback"),
    path("<slug:slug>/retire", views_rollout.retire_post, name="retire"),
]
