"""The reviewer console stage: web app, appeals API, transparency reports."""
