"""All SQLModel tables, imported here so one ``SQLModel.metadata`` knows every table.

A new area adds ``models/<area>.py`` and one import line below, then one Alembic migration.
"""

from .audit import AuditEvent
from .base import id_of, metadata, to_utc, utcnow
from .courses import Assignment, Cohort, Course, Enrollment, Extension, LatePolicy
from .credentials import (
    CredentialBatch,
    CredentialRecord,
    IssuerKeyRecord,
    IssuerProfile,
    LedgerRegistryRecord,
    StatusListRecord,
)
from .grading import Grade, GradeJob, JobStatus, Submission
from .identity import ApiToken, Institution, Role, RoleAssignment, User

__all__ = [
    "ApiToken",
    "Assignment",
    "AuditEvent",
    "Cohort",
    "CredentialBatch",
    "CredentialRecord",
    "Course",
    "Enrollment",
    "Extension",
    "Grade",
    "GradeJob",
    "Institution",
    "IssuerKeyRecord",
    "IssuerProfile",
    "JobStatus",
    "LatePolicy",
    "LedgerRegistryRecord",
    "Role",
    "StatusListRecord",
    "RoleAssignment",
    "Submission",
    "User",
    "id_of",
    "metadata",
    "to_utc",
    "utcnow",
]
