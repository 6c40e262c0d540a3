"""Courses: read and check course folders (``course.toml``, ``lab.toml``, nbgrader notebooks).

The platform's course import and ``academy course check`` read courses through
:func:`load_course`; :mod:`.check` grades every lab's reference solution and starter through the
real grader and starts the chain each lab asks for.
"""

from .spec import (
    ChainSpec,
    Course,
    CourseError,
    CourseSpec,
    Lab,
    LabSpec,
    find_courses,
    load_course,
    load_lab_spec,
)

__all__ = [
    "ChainSpec",
    "Course",
    "CourseError",
    "CourseSpec",
    "Lab",
    "LabSpec",
    "find_courses",
    "load_course",
    "load_lab_spec",
]
